from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("pinterest/", include("pinterest_capi.urls")),
    path("", include("shop_demo.shop.urls")),
]
