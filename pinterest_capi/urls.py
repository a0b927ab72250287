"""The app's URLs: include them under a prefix of the shop's choosing.

``path("pinterest/", include("pinterest_capi.urls"))`` serves the REST API at
``/pinterest/api/v1/`` (namespace ``pinterest_capi``).
"""

from django.urls import include, path

app_name = "pinterest_capi"

urlpatterns = [
    path("api/v1/", include("pinterest_capi.api.urls")),
]
