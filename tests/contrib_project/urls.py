"""Oscar's storefront at the root, allauth under /auth/ (Oscar has its own /accounts/)."""

from django.apps import apps
from django.urls import include, path

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),  # Oscar's templates link set_language
    path("auth/", include("allauth.urls")),
    path("", include(apps.get_app_config("oscar").urls[0])),
]
