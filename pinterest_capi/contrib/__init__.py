"""Adapters for shop frameworks: each is an app that adds its signal → mapper entries.

Add one to INSTALLED_APPS (after ``pinterest_capi``) and the framework's own signals
are recorded through the same receivers as ``PINTEREST_CAPI["SIGNALS"]``, which can
override or drop (map to None) any of the adapter's entries.
"""
