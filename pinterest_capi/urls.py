"""URLs of pinterest_capi: mount with ``path("pinterest/", include("pinterest_capi.urls"))``.

``beacon/`` receives the browser's page_visit, search and view_category events
(:mod:`pinterest_capi.api.beacon`); ``{% pinterest_browser_event %}`` finds it by its name,
``pinterest_capi:beacon``.
"""

from django.urls import path

from .api.beacon import BeaconView

app_name = "pinterest_capi"

urlpatterns = [
    path("beacon/", BeaconView.as_view(), name="beacon"),
]
