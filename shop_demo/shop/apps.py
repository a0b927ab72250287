from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "shop_demo.shop"
    label = "shop"
    verbose_name = "Demo shop"
    default_auto_field = "django.db.models.BigAutoField"
