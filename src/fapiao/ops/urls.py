"""The operators' pages (the health endpoints and ``/metrics`` are mounted in ``fapiao.urls``)."""

from __future__ import annotations

from django.urls import path

from fapiao.ops import pages

app_name = "ops"

urlpatterns = [
    path("", pages.overview_page, name="overview"),
    path("backups/", pages.backups_page, name="backups"),
]
