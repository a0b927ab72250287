"""Browser tests: headless Chromium (Playwright) driving the running demo (``shop_demo_serve``)."""
