"""The app a django-oscar shop installs to record Oscar's signals as Pinterest events."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

_MAPPERS = "pinterest_capi.contrib.oscar.mappers"


class PinterestCapiOscarConfig(AppConfig):
    """Declares Oscar's signals and their mappers; ``pinterest_capi`` connects them.

    Nothing is connected here: ``pinterest_capi.receivers`` reads ``pinterest_capi_signals``
    from every installed app, so Oscar's events go through the same receivers, savepoint,
    consent hook, tenant resolver and system checks as a shop's own ``SIGNALS`` entries (which
    override these; a None value drops one).
    """

    name = "pinterest_capi.contrib.oscar"
    label = "pinterest_capi_oscar"  # "oscar" is Oscar's own label
    verbose_name = _("Pinterest Conversions API for django-oscar")

    pinterest_capi_signals = {
        "oscar.apps.order.signals.order_placed": f"{_MAPPERS}.checkout_from_order",
        "oscar.apps.basket.signals.basket_addition": f"{_MAPPERS}.add_to_cart_from_basket",
        "oscar.apps.customer.signals.user_registered": "pinterest_capi.mappers.signup_from_user",
        "oscar.apps.catalogue.signals.product_viewed": f"{_MAPPERS}.page_visit_from_product",
        "oscar.apps.search.signals.user_search": f"{_MAPPERS}.search_from_query",
    }
