"""The app's URLs: include them under a prefix of the shop's choosing.

``path("pinterest/", include("pinterest_capi.urls"))`` serves (namespace ``pinterest_capi``):

* ``api/v1/`` — the REST API (:mod:`pinterest_capi.api.urls`): server-side event ingest with
  per-tenant API keys, the staff operations endpoints and the OpenAPI schema;
* ``beacon/`` — the browser's page_visit, search and view_category events
  (:mod:`pinterest_capi.api.beacon`); ``{% pinterest_browser_event %}`` finds it by its name,
  ``pinterest_capi:beacon``.
"""

from django.urls import include, path

from .api import urls as api_urls
from .api.beacon import BeaconView

app_name = "pinterest_capi"

beacon = path("beacon/", BeaconView.as_view(), name="beacon")

# Every endpoint the OpenAPI document describes (``api/v1/schema/`` serves it; the schema
# view itself is left out).
documented_urlpatterns = [path("api/v1/", include(api_urls.documented_urlpatterns)), beacon]

urlpatterns = [path("api/v1/", include(api_urls.urlpatterns)), beacon]
