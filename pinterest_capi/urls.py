"""The app's URLs: include them under a prefix of the shop's choosing.

``path("pinterest/", include("pinterest_capi.urls"))`` serves (namespace ``pinterest_capi``):

* ``api/v1/`` — the REST API (:mod:`pinterest_capi.api.urls`): server-side event ingest with
  per-tenant API keys, the staff operations endpoints and the OpenAPI schema;
* ``beacon/`` — the browser's page_visit, search and view_category events
  (:mod:`pinterest_capi.api.beacon`); ``{% pinterest_browser_event %}`` finds it by its name,
  ``pinterest_capi:beacon``.
"""

from django.urls import include, path

from .api.beacon import BeaconView

app_name = "pinterest_capi"

urlpatterns = [
    path("api/v1/", include("pinterest_capi.api.urls")),
    path("beacon/", BeaconView.as_view(), name="beacon"),
]
