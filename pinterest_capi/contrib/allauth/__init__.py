"""django-allauth adapter: ``user_signed_up`` → a Pinterest ``signup`` event.

Add ``"pinterest_capi.contrib.allauth"`` to INSTALLED_APPS.
"""
