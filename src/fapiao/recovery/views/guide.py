"""使用指南: issuing and finding invoices, the five steps of a recovery, keeping and checking receipts.
Public pages."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from fapiao.recovery.views.progress import STEPS


@require_GET
def recovery_guide(request: HttpRequest) -> HttpResponse:
    return render(request, "recovery/guide/recovery.html", {"step_labels": [str(step) for step in STEPS]})


@require_GET
def receipts_guide(request: HttpRequest) -> HttpResponse:
    return render(request, "recovery/guide/receipts.html", {})


@require_GET
def invoices_guide(request: HttpRequest) -> HttpResponse:
    return render(request, "recovery/guide/invoices.html", {})
