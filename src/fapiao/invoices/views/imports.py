"""导入发票 (merchant admins): upload a file, preview the dry run, import, download the report.

Thin: the services are :mod:`fapiao.invoices.importing`; the uploaded file is kept by its SHA-256
between the preview and the import.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fapiao.accounts.permissions import Action, require
from fapiao.accounts.requests import acting_user
from fapiao.core.canonical import canonical_bytes
from fapiao.core.choices import Direction, ImportRunState
from fapiao.core.errors import _
from fapiao.formats.mapping import ColumnMapping
from fapiao.invoices import importing
from fapiao.invoices.import_manifest import reasons_lines
from fapiao.platform.forms import FormState


def _mappings() -> dict[str, ColumnMapping]:
    found: dict[str, ColumnMapping] = {}
    directory = settings.FAPIAO_IMPORT_MAPPINGS_DIR
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            mapping, _problems = ColumnMapping.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
        if mapping is not None:
            found[path.stem] = mapping
    return found


def _options(request: HttpRequest, state: FormState) -> importing.ImportOptions | None:
    user = acting_user(request)
    direction = request.POST.get("direction", "out")
    if direction not in {d.value for d in Direction}:
        state.add("direction", gettext(_("Choose one of: {choices}.")).format(choices="out, in"))
        return None
    name = request.POST.get("mapping", "")
    mappings = _mappings()
    if name and name not in mappings:
        state.add("mapping", gettext(_("No such column mapping.")))
        return None
    assert user.merchant is not None
    return importing.ImportOptions(user.merchant, Direction(direction), mappings.get(name) if name else None)


def _context(request: HttpRequest, state: FormState, **extra: object) -> dict[str, object]:
    user = acting_user(request)
    return {
        "form": state,
        "mappings": sorted(_mappings()),
        "runs": importing.recent_runs(user=user),
        "max_mb": settings.FAPIAO_IMPORT_MAX_FILE_MB,
        **extra,
    }


@login_required
@require_http_methods(["GET", "POST"])
def import_page(request: HttpRequest) -> HttpResponse:
    """GET: the form; POST: upload and show the dry run (nothing is written)."""
    user = acting_user(request)
    require(user, Action.IMPORT_INVOICES)
    state = FormState()
    if request.method == "GET":
        return render(request, "invoices/import.html", _context(request, state))
    state.data = {
        "direction": request.POST.get("direction", "out"),
        "mapping": request.POST.get("mapping", ""),
    }
    upload = request.FILES.get("file")
    options = _options(request, state)
    if upload is None:
        state.add("file", gettext(_("Choose a file to import.")))
    elif upload.size is not None and upload.size > settings.FAPIAO_IMPORT_MAX_FILE_MB * 2**20:
        message = gettext(_("The file is larger than {max} MB."))
        state.add("file", message.format(max=settings.FAPIAO_IMPORT_MAX_FILE_MB))
    if state.invalid or options is None or upload is None:
        return render(request, "invoices/import.html", _context(request, state))
    source = importing.keep_upload(user=user, name=upload.name or "upload", data=upload.read())
    plan = importing.dry_run(user=user, options=options, sources=[source])
    return render(request, "invoices/import.html", _context(request, state, plan=plan, source=source))


@login_required
@require_POST
def import_commit(request: HttpRequest) -> HttpResponse:
    user = acting_user(request)
    require(user, Action.IMPORT_INVOICES)
    state = FormState()
    options = _options(request, state)
    if options is None:
        return render(request, "invoices/import.html", _context(request, state))
    source = importing.kept_upload(
        user=user, sha256=request.POST.get("sha256", ""), name=request.POST.get("name", "upload")[:200]
    )
    run = importing.commit_import(user=user, options=options, sources=[source], max_batches=0)
    return redirect("invoices:import-run", run.run_id)


@login_required
@require_POST
def import_step(request: HttpRequest, run_id: str) -> HttpResponse:
    """Import the next batch.  htmx gets the progress block; a plain form goes back to the page."""
    run = importing.import_step(user=acting_user(request), run_id=run_id)
    page = reverse("invoices:import-run", args=[run.run_id])
    progress = importing.run_progress(run)
    if request.headers.get("HX-Request") != "true":
        return redirect(page)
    if run.state != ImportRunState.RUNNING:
        response = HttpResponse(status=200)
        response["HX-Redirect"] = page
        return response
    context = {"run": run, "progress": progress, "step_url": request.path}
    return render(request, "invoices/_import_progress.html", context)


@login_required
@require_GET
def import_run(request: HttpRequest, run_id: str) -> HttpResponse:
    run = importing.find_run(user=acting_user(request), run_id=run_id)
    manifest = run.manifest["manifest"] if run.manifest else None
    context = {
        "run": run,
        "manifest": manifest,
        "progress": importing.run_progress(run),
        "running": run.state == ImportRunState.RUNNING,
        "step_url": reverse("invoices:import-step", args=[run.run_id]),
    }
    return render(request, "invoices/import_run.html", context)


@login_required
@require_GET
def import_report(request: HttpRequest, run_id: str, part: str) -> HttpResponse:
    run = importing.find_run(user=acting_user(request), run_id=run_id)
    if part == "manifest":
        body, kind = canonical_bytes(run.manifest or {}), "application/json"
    else:
        body, kind = b"".join(reasons_lines(run)), "application/jsonl"
    response = HttpResponse(body, content_type=kind)
    suffix = "manifest.json" if part == "manifest" else "rejected.jsonl"
    response["Content-Disposition"] = f'attachment; filename="{run.run_id}-{suffix}"'
    return response
