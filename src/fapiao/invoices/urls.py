"""The invoice pages: search, issue, batch issuing, one invoice, red-letter, monthly totals.

Included at the site's root: the paths are the ones users have bookmarked (the JSON API is
``/api/v1/invoices``).
"""

from __future__ import annotations

from django.urls import path, re_path

from fapiao.invoices.views import batch, imports, invoices, issue, red_letter, totals

app_name = "invoices"

urlpatterns = [
    path("invoices/", invoices.invoice_list, name="list"),
    path("invoices/new/", issue.issue, name="issue"),
    path("invoices/new/totals/", issue.issue_preview, name="issue-preview"),
    path("invoices/new/buyer/", issue.issue_buyer, name="issue-buyer"),
    path("invoices/batch/", batch.batch_upload, name="batch"),
    re_path(r"^invoices/batch/template\.(?P<kind>csv|xlsx)$", batch.batch_template, name="batch-template"),
    path("invoices/batch/<str:public_id>/", batch.batch_detail, name="batch-detail"),
    path("invoices/batch/<str:public_id>/step/", batch.batch_step, name="batch-step"),
    path("invoices/import/", imports.import_page, name="import"),
    path("invoices/import/commit/", imports.import_commit, name="import-commit"),
    path("invoices/import/<str:run_id>/", imports.import_run, name="import-run"),
    path("invoices/import/<str:run_id>/step/", imports.import_step, name="import-step"),
    path(
        "invoices/import/<str:run_id>/manifest/",
        imports.import_report,
        {"part": "manifest"},
        name="import-manifest",
    ),
    path(
        "invoices/import/<str:run_id>/rejected/",
        imports.import_report,
        {"part": "rejected"},
        name="import-rejected",
    ),
    path("invoices/<str:number>/", invoices.invoice_detail, name="invoice"),
    path("invoices/<str:number>/print/", invoices.invoice_print, name="invoice-print"),
    path("invoices/<str:number>/receipt/", invoices.invoice_receipt, name="invoice-receipt"),
    path("invoices/<str:number>/red-letter/", red_letter.red_letter, name="red-letter"),
    path("totals/", totals.totals, name="totals"),
]
