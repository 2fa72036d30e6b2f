"""Ledger pages (the JSON API is in ``fapiao.ledger.api``)."""

from __future__ import annotations

from django.urls import path

from fapiao.ledger import views

app_name = "ledger"

urlpatterns = [
    path("verify/", views.verify_page, name="verify"),
]
