"""Batch issuing: download the template, upload, preview every bad row, then issue with progress.

Issuing runs a few rows per request.  With script, the progress block asks for the next step
by itself (htmx); without, a button does.  Repeating a step is harmless (one
``Idempotency-Key`` per row).
"""

from __future__ import annotations

import contextlib
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fapiao.accounts.permissions import Action, require
from fapiao.accounts.requests import acting_user
from fapiao.catalogue import selectors as catalogue
from fapiao.catalogue.models import Batch, BatchRow, BatchState, RowStatus
from fapiao.core.errors import ValidationFailed, _
from fapiao.formats.batch import COLUMNS, MAX_BYTES, MAX_ROWS
from fapiao.formats.batch_template import write_template
from fapiao.invoices import batches
from fapiao.invoices.panels import render_panels
from fapiao.platform.forms import FormState

TEMPLATE_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@login_required
@require_GET
def batch_template(request: HttpRequest, kind: str) -> HttpResponse:
    require(acting_user(request), Action.ISSUE_INVOICE)
    response = HttpResponse(write_template(kind), content_type=TEMPLATE_TYPES[kind])
    response["Content-Disposition"] = f'attachment; filename="fapiao-batch-template.{kind}"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def batch_upload(request: HttpRequest) -> HttpResponse:
    user = acting_user(request)
    require(user, Action.ISSUE_INVOICE)
    state = FormState()
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None:
            state.add("file", gettext(_("Choose the filled-in template to upload.")))
        elif upload.size is not None and upload.size > MAX_BYTES:
            state.add("file", gettext(_("The file is larger than {max} MB.")).format(max=MAX_BYTES // 2**20))
        else:
            try:
                batch = batches.create_batch(user=user, filename=upload.name or "upload", data=upload.read())
            except ValidationFailed as failed:
                state.add_failure(failed, lambda path: "file")
            else:
                return redirect("invoices:batch-detail", str(batch.public_id))
    context = {
        "form": state,
        "recent": catalogue.batch_list(user=user)[:10],
        "columns": COLUMNS,
        "max_rows": MAX_ROWS,
        "max_mb": MAX_BYTES // 2**20,
    }
    return render(request, "invoices/batch/upload.html", context, status=200)


def _problems(row: BatchRow) -> list[dict[str, str]]:
    columns = {column.key: column.label for column in COLUMNS}
    found = []
    for problem in row.problems:
        text = gettext(str(problem.get("message", "")))
        params = problem.get("params") or {}
        with contextlib.suppress(KeyError, IndexError):
            text = text.format(**params) if params else text
        found.append({"column": columns.get(str(problem.get("field", "")), ""), "message": text})
    return found


def _detail_context(batch: Batch) -> dict[str, Any]:
    rows = list(catalogue.batch_rows(batch))
    bad = [{"row": row, "problems": _problems(row)} for row in rows if row.status == RowStatus.BAD]
    failed = [{"row": row, "problems": _problems(row)} for row in rows if row.status == RowStatus.FAILED]
    ready = [row for row in rows if row.status == RowStatus.READY]
    issued = [row for row in rows if row.status == RowStatus.ISSUED]
    return {
        "batch": batch,
        "ready": ready,
        "issued": issued,
        "good_count": len(ready) + len(issued) + len(failed),
        "bad": bad,
        "failed": failed,
        "progress": batches.progress(batch),
        "step_url": reverse("invoices:batch-step", args=[str(batch.public_id)]),
        "issuing": batch.state == BatchState.ISSUING,
    }


@login_required
@require_GET
def batch_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    user = acting_user(request)
    batch = catalogue.batch_get(user=user, public_id=public_id)
    context = {**_detail_context(batch), "panels": render_panels("batch", request, batch)}
    return render(request, "invoices/batch/detail.html", context)


@login_required
@require_POST
def batch_step(request: HttpRequest, public_id: str) -> HttpResponse:
    """Issue the next few rows.  htmx gets the progress block; a plain form goes back to the page."""
    user = acting_user(request)
    batch, progress = batches.issue_step(user=user, public_id=public_id)
    detail = reverse("invoices:batch-detail", args=[str(batch.public_id)])
    if request.headers.get("HX-Request") != "true":
        return redirect(detail)
    if progress.done:
        response = HttpResponse(status=200)
        response["HX-Redirect"] = detail  # the whole page again, with every row's result
        return response
    context = {"progress": progress, "step_url": request.path, "issuing": True, "batch": batch}
    return render(request, "invoices/batch/_progress.html", context)
