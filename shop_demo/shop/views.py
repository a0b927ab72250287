"""Storefront views: thin HTTP wrappers around :mod:`.services`."""

from __future__ import annotations

from itertools import groupby

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from . import services
from .forms import AddToCartForm, CheckoutForm, NewsletterForm, SearchForm, SignUpForm
from .models import Category, Order, Product


def home(request: HttpRequest) -> HttpResponse:
    products = Product.objects.filter(active=True).select_related("category")
    shelves = [
        (category, list(items))
        for category, items in groupby(products, key=lambda product: product.category)
    ]
    return render(request, "shop/home.html", {"shelves": shelves})


def category_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """A shelf; its template emits a browser-made ``view_category`` (beacon + Tag)."""
    category = get_object_or_404(Category, slug=slug)
    products = list(category.products.filter(active=True))
    return render(
        request,
        "shop/category.html",
        {"category": category, "products": products, "skus": [p.sku for p in products]},
    )


def search(request: HttpRequest) -> HttpResponse:
    """Results for ``?q=``; the template emits a browser-made ``search`` when there is a query."""
    form = SearchForm(request.GET or None)
    query = form.cleaned_data["q"] if form.is_valid() else ""
    products = services.search_products(query) if query else []
    return render(
        request,
        "shop/search.html",
        {"form": form, "query": query, "products": products, "skus": [p.sku for p in products]},
    )


@require_POST
def newsletter(request: HttpRequest) -> HttpResponse:
    """The footer's newsletter form: a ``lead`` recorded on the server, fired by the Tag on
    the page the visitor is sent back to, with the same event_id."""
    form = NewsletterForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Please enter a valid email address to subscribe.")
    else:
        services.subscribe_newsletter(request, form.cleaned_data["email"])
        messages.success(request, "Thanks! You are on the list.")
    back = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
        back = ""
    return redirect(back or "shop:home")


def product_detail(request: HttpRequest, slug: str) -> HttpResponse:
    product = get_object_or_404(Product.objects.select_related("category"), slug=slug, active=True)
    return render(request, "shop/product.html", {"product": product, "form": AddToCartForm()})


@require_POST
def add_to_cart(request: HttpRequest, slug: str) -> HttpResponse:
    # The category comes along: the add_to_cart event names it (no query per add).
    product = get_object_or_404(Product.objects.select_related("category"), slug=slug, active=True)
    form = AddToCartForm(request.POST)
    if not form.is_valid():
        return render(request, "shop/product.html", {"product": product, "form": form}, status=400)
    services.add_to_cart(request, product, form.cleaned_data["quantity"])
    messages.success(request, f"Added {product.name} to your cart.")
    return redirect("shop:cart")


@require_POST
def remove_from_cart(request: HttpRequest, line_id: int) -> HttpResponse:
    services.remove_from_cart(request, line_id)
    return redirect("shop:cart")


def cart(request: HttpRequest) -> HttpResponse:
    current = services.get_cart(request)
    lines = list(current.lines.select_related("product")) if current else []
    return render(request, "shop/cart.html", {"cart": current, "lines": lines})


def checkout(request: HttpRequest) -> HttpResponse:
    current = services.get_cart(request)
    lines = list(current.lines.select_related("product")) if current else []
    if not lines:
        messages.info(request, "Your cart is empty.")
        return redirect("shop:cart")
    if request.method == "POST":
        form = CheckoutForm(request.POST)
        if form.is_valid():
            try:
                services.place_order(request, current, form.cleaned_data)
            except services.CheckoutError as exc:
                form.add_error(None, str(exc))
            else:
                return redirect("shop:thanks")
    else:
        user = request.user
        initial = (
            {"email": user.email, "first_name": user.first_name, "last_name": user.last_name}
            if user.is_authenticated
            else {}
        )
        form = CheckoutForm(initial=initial)
    status = 400 if form.is_bound else 200
    return render(
        request,
        "shop/checkout.html",
        {"form": form, "cart": current, "lines": lines},
        status=status,
    )


def thanks(request: HttpRequest) -> HttpResponse:
    """The last order placed in this session (never an order chosen by the URL)."""
    number = request.session.get(services.LAST_ORDER_SESSION_KEY)
    order = (
        Order.objects.filter(number=number).prefetch_related("lines").first() if number else None
    )
    if order is None:
        raise Http404("No order placed in this session.")
    return render(request, "shop/thanks.html", {"order": order})


def signup(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = SignUpForm(request.POST)
        if form.is_valid():
            services.sign_up(request, **form.cleaned_data)
            messages.success(request, "Welcome! Your account is ready.")
            return redirect("shop:home")
    else:
        form = SignUpForm()
    return render(request, "shop/signup.html", {"form": form}, status=400 if form.is_bound else 200)
