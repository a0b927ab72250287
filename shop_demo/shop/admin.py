"""Admin for the shop's catalogue and orders (the Pinterest app has its own admin)."""

from django.contrib import admin

from .models import Cart, CartLine, Category, Order, OrderLine, Product


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "category", "brand", "price", "currency", "active"]
    list_filter = ["active", "category", "brand"]
    search_fields = ["sku", "name", "brand"]
    prepopulated_fields = {"slug": ["name"]}


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    fields = ["sku", "product_name", "unit_price", "quantity", "category", "brand"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["number", "email", "first_name", "last_name", "total", "currency", "created_at"]
    list_filter = ["country", "currency"]
    search_fields = ["number", "email", "last_name"]
    date_hierarchy = "created_at"
    readonly_fields = ["number", "total", "currency", "created_at"]
    inlines = [OrderLineInline]


class CartLineInline(admin.TabularInline):
    model = CartLine
    extra = 0
    raw_id_fields = ["product"]


@admin.register(Cart)
class CartAdmin(admin.ModelAdmin):
    list_display = ["pk", "user", "session_key", "created"]
    inlines = [CartLineInline]
