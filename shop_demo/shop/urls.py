from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

app_name = "shop"

urlpatterns = [
    path("", views.home, name="home"),
    path("c/<slug:slug>/", views.category_detail, name="category"),
    path("search/", views.search, name="search"),
    path("newsletter/", views.newsletter, name="newsletter"),
    path("p/<slug:slug>/", views.product_detail, name="product"),
    path("p/<slug:slug>/add/", views.add_to_cart, name="add_to_cart"),
    path("cart/", views.cart, name="cart"),
    path("cart/remove/<int:line_id>/", views.remove_from_cart, name="remove_from_cart"),
    path("checkout/", views.checkout, name="checkout"),
    path("checkout/thanks/", views.thanks, name="thanks"),
    path("account/signup/", views.signup, name="signup"),
    path(
        "account/login/",
        auth_views.LoginView.as_view(template_name="shop/login.html", next_page="shop:home"),
        name="login",
    ),
    path("account/logout/", auth_views.LogoutView.as_view(next_page="shop:home"), name="logout"),
]
