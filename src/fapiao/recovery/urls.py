"""The recovery pages under /cases/ (the API is /api/v1/cases)."""

from __future__ import annotations

from django.urls import path

from fapiao.recovery.views import apply, case, findings, guide, notifications, staff

app_name = "recovery"

urlpatterns = [
    path("", case.case_list, name="list"),
    path("new/", apply.new_case, name="new"),
    path("<uuid:case_id>/", case.case_page, name="case"),
    path("<uuid:case_id>/edit/", apply.edit_case, name="edit"),
    path("<uuid:case_id>/evidence/", case.upload_evidence, name="evidence"),
    path("<uuid:case_id>/evidence/<uuid:evidence_id>/", case.download_evidence, name="evidence-file"),
    path("<uuid:case_id>/receipt.pdf", case.receipt_pdf, name="receipt"),
    path("<uuid:case_id>/messages/", case.post_message, name="message"),
    path("<uuid:case_id>/act/<str:action>/", case.act, name="act"),
    path("from-finding/<str:number>/", findings.case_from_finding, name="from-finding"),
    path("notifications/", notifications.notification_list, name="notifications"),
    path("guide/", guide.recovery_guide, name="guide"),
    path("guide/receipts/", guide.receipts_guide, name="guide-receipts"),
    *staff.urlpatterns,
]
