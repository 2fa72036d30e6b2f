"""The documents pages, included at the site's root before the invoice pages (so that
``invoices/documents/`` is this app's, not an invoice numbered "documents")."""

from __future__ import annotations

from django.urls import path

from fapiao.documents.views import check, documents

app_name = "documents"

urlpatterns = [
    path("check/", check.check_page, name="check"),
    path("invoices/documents/", documents.bundle_page, name="bundle"),
    path("invoices/<str:number>/document.pdf", documents.download_pdf, name="pdf"),
    path("invoices/<str:number>/document.xml", documents.download_xml, name="xml"),
    path("invoices/<str:number>/receipt.pdf", documents.download_receipt_pdf, name="receipt-pdf"),
    path("invoices/<str:number>/deliveries/", documents.deliver, name="deliver"),
    path("invoices/batch/<str:public_id>/deliver/", documents.deliver_batch, name="batch-deliver"),
]
