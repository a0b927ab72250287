"""The demo catalogue: a few categories and a dozen products, created idempotently."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from .models import Category, Product

CATEGORIES: dict[str, str] = {
    "home": "Home & Living",
    "kitchen": "Kitchen",
    "garden": "Garden",
    "stationery": "Stationery",
}

# sku, name, category slug, brand, price, description
PRODUCTS: list[tuple[str, str, str, str, str, str]] = [
    ("HL-1001", "Linen Cushion Cover", "home", "Northwind", "24.00", "Stonewashed linen, 45 cm."),
    ("HL-1002", "Wool Throw Blanket", "home", "Fellside", "68.00", "Soft lambswool, 130×180 cm."),
    ("HL-1003", "Ceramic Table Lamp", "home", "Lumen & Co", "89.50", "Glazed base, linen shade."),
    ("KT-2001", "Enamel Milk Pan", "kitchen", "Hearth", "19.95", "1.2 litre, induction ready."),
    ("KT-2002", "Oak Chopping Board", "kitchen", "Timberline", "34.00", "End-grain oak, oiled."),
    ("KT-2003", "Stoneware Mug Set", "kitchen", "Hearth", "28.00", "Four hand-dipped mugs."),
    (
        "GD-3001",
        "Terracotta Pot Trio",
        "garden",
        "Potting Shed",
        "22.50",
        "Three sizes, frost-proof.",
    ),
    ("GD-3002", "Ash Handled Trowel", "garden", "Potting Shed", "16.00", "Stainless blade."),
    ("GD-3003", "Herb Seed Collection", "garden", "Greenleaf", "9.99", "Basil, thyme and more."),
    ("ST-4001", "Dot Grid Notebook", "stationery", "Paperlane", "12.00", "A5, 160 pages."),
    ("ST-4002", "Brass Fountain Pen", "stationery", "Inkwell", "45.00", "Medium nib, converter."),
    ("ST-4003", "Linen Desk Planner", "stationery", "Paperlane", "18.50", "Undated weekly pages."),
]


def seed_catalog() -> list[Product]:
    """Create the demo categories and products that are missing; existing rows are kept.

    Safe to call on every start and in every test: it looks rows up by slug / SKU.
    """
    with transaction.atomic():
        categories = {
            slug: Category.objects.get_or_create(slug=slug, defaults={"name": name})[0]
            for slug, name in CATEGORIES.items()
        }
        products = []
        for sku, name, category, brand, price, description in PRODUCTS:
            product, _ = Product.objects.get_or_create(
                sku=sku,
                defaults={
                    "name": name,
                    "slug": sku.lower(),
                    "description": description,
                    "price": Decimal(price),
                    "category": categories[category],
                    "brand": brand,
                },
            )
            products.append(product)
    return products
