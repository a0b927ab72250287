from django.apps import AppConfig


class ShopConfig(AppConfig):
    """The demo storefront: a plain Django shop that only fires its own signals."""

    name = "shop_demo.shop"
    label = "shop"
    verbose_name = "Demo shop"
    default_auto_field = "django.db.models.BigAutoField"
