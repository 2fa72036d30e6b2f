"""The address book and the product catalogue pages (included at the site's root, paths unchanged)."""

from __future__ import annotations

from django.urls import path

from fapiao.catalogue.views import buyers, products

app_name = "catalogue"

urlpatterns = [
    path("address-book/", buyers.buyer_list, name="buyers"),
    path("address-book/new/", buyers.buyer_edit, name="buyer-new"),
    path("address-book/<int:buyer_id>/", buyers.buyer_edit, name="buyer-edit"),
    path("address-book/<int:buyer_id>/delete/", buyers.buyer_delete, name="buyer-delete"),
    path("products/", products.product_list, name="products"),
    path("products/new/", products.product_edit, name="product-new"),
    path("products/<int:product_id>/", products.product_edit, name="product-edit"),
    path("products/<int:product_id>/delete/", products.product_delete, name="product-delete"),
]
