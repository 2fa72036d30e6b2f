"""The audit trail pages (the JSON API is ``/api/v1/audit``)."""

from __future__ import annotations

from django.urls import path, re_path

from fapiao.audit import views

app_name = "audit"

urlpatterns = [
    path("", views.record_list, name="records"),
    re_path(r"^export\.(?P<kind>csv|xlsx)$", views.record_export, name="export"),
    path("verify/", views.verify_page, name="verify"),
]
