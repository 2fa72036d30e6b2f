"""The pages (the JSON API is under ``/api/v1/``)."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path, re_path, reverse_lazy

from fapiao.web.views import account, batch, catalogue, home, invoices, issue, red_letter, totals

app_name = "web"

urlpatterns = [
    path("", home.home, name="home"),
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="web/auth/login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(next_page=reverse_lazy("web:login")), name="logout"),
    path(
        "password/",
        account.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "password/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="web/auth/password_done.html"),
        name="password-done",
    ),
    path("invoices/", invoices.invoice_list, name="invoices"),
    path("invoices/new/", issue.issue, name="issue"),
    path("invoices/new/totals/", issue.issue_preview, name="issue-preview"),
    path("invoices/new/buyer/", issue.issue_buyer, name="issue-buyer"),
    path("invoices/batch/", batch.batch_upload, name="batch"),
    re_path(r"^invoices/batch/template\.(?P<kind>csv|xlsx)$", batch.batch_template, name="batch-template"),
    path("invoices/batch/<str:public_id>/", batch.batch_detail, name="batch-detail"),
    path("invoices/batch/<str:public_id>/step/", batch.batch_step, name="batch-step"),
    path("invoices/<str:number>/", invoices.invoice_detail, name="invoice"),
    path("invoices/<str:number>/print/", invoices.invoice_print, name="invoice-print"),
    path("invoices/<str:number>/receipt/", invoices.invoice_receipt, name="invoice-receipt"),
    path("invoices/<str:number>/red-letter/", red_letter.red_letter, name="red-letter"),
    path("address-book/", catalogue.buyer_list, name="buyers"),
    path("address-book/new/", catalogue.buyer_edit, name="buyer-new"),
    path("address-book/<int:buyer_id>/", catalogue.buyer_edit, name="buyer-edit"),
    path("address-book/<int:buyer_id>/delete/", catalogue.buyer_delete, name="buyer-delete"),
    path("products/", catalogue.product_list, name="products"),
    path("products/new/", catalogue.product_edit, name="product-new"),
    path("products/<int:product_id>/", catalogue.product_edit, name="product-edit"),
    path("products/<int:product_id>/delete/", catalogue.product_delete, name="product-delete"),
    path("totals/", totals.totals, name="totals"),
]
