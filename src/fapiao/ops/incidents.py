"""The operators' incidents page (数据完整性事件): every incident in Chinese, and what to do about it.

The incident banner links here.  Each incident says what was found (its finding codes named in
Chinese, :data:`fapiao.core.ledger_findings.TITLES`), which merchant and which invoices, and since
when; operators acknowledge it, resolve it with a note, notify the merchant of its open findings,
and open a recovery case prefilled from the ledger for a flagged invoice on the merchant's behalf.
Every action goes through a service that checks the role (``HANDLE_INCIDENTS``) and audits it.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language, gettext, ngettext
from django.views.decorators.http import require_GET, require_http_methods

from fapiao.accounts.permissions import Action, require
from fapiao.accounts.requests import acting_user
from fapiao.core.errors import FapiaoError, NotFoundError, _
from fapiao.core.strict import whole_number_or_none
from fapiao.invoices import findings
from fapiao.invoices.models import InvoiceFinding
from fapiao.ledger import incidents
from fapiao.ledger.models import IntegrityIncident
from fapiao.ledger.verify import code_title
from fapiao.platform.errors import friendly
from fapiao.platform.labels import label
from fapiao.recovery.loss import FindingNotFoundError, notify_merchant, open_case_for_finding

ACTIONS = ("acknowledge", "resolve", "notify", "open_case")


class UnknownIncidentActionError(NotFoundError):
    """There is no such action on an integrity incident."""

    code = "incident_action_unknown"


def _title(code: str) -> str:
    return code_title(code, get_language() or "zh-hans")


def _counts(incident: IntegrityIncident) -> list[dict[str, Any]]:
    """``details.summary`` ("code × n, …") as (Chinese name, code, count)."""
    found = []
    for part in str(incident.details.get("summary", "")).split(", "):
        code, _sep, count = part.partition(" × ")
        if code:
            found.append({"title": _title(code), "code": code, "count": count})
    return found


def _where(key: str) -> dict[str, str]:
    """A finding key ``code.variant@log#where`` in words."""
    code_part, _sep, rest = key.partition("@")
    _log, _hash, where = rest.partition("#")
    return {"title": _title(code_part.split(".")[0]), "code": code_part, "where": where}


def _row(incident: IntegrityIncident) -> dict[str, Any]:
    merchant = incident.merchant
    return {
        "incident": incident,
        "kind": label("incident_kind", incident.kind),
        "state": label("incident_state", incident.state),
        "merchant": f"{merchant.name}（{merchant.uscc}）"
        if merchant
        else gettext("no merchant (the witness file)"),
        "counts": _counts(incident),
    }


def _invoices(incident: IntegrityIncident) -> list[dict[str, Any]]:
    if incident.merchant_id is None:
        return []
    rows = InvoiceFinding.objects.filter(merchant_id=incident.merchant_id).filter(
        incident=incident
    ) | findings.active_for_merchant(incident.merchant_id)
    return [
        {
            "finding": finding,
            "title": _title(finding.code),
            "ledger": finding.ledger,
            "active": finding.cleared_at is None,
        }
        for finding in rows.distinct().order_by("number")
    ]


@login_required
@require_GET
def incident_list(request: HttpRequest) -> HttpResponse:
    user = acting_user(request)
    require(user, Action.HANDLE_INCIDENTS)
    show_all = request.GET.get("all") == "1"
    items = [_row(incident) for incident in incidents.incidents(include_resolved=show_all).reverse()[:200]]
    return render(request, "ops/incidents.html", {"items": items, "show_all": show_all})


@login_required
@require_GET
@friendly
def incident_page(request: HttpRequest, incident_id: int) -> HttpResponse:
    user = acting_user(request)
    require(user, Action.HANDLE_INCIDENTS)
    incident = incidents.get_incident(incident_id)
    return render(request, "ops/incident.html", _context(incident))


def _context(incident: IntegrityIncident, **extra: Any) -> dict[str, Any]:
    return {
        **_row(incident),
        "keys": [_where(key) for key in incident.details.get("findings", [])],
        "invoices": _invoices(incident),
        "note": "",
        "errors": [],
        **extra,
    }


@login_required
@require_http_methods(["POST"])
@friendly
def incident_act(request: HttpRequest, incident_id: int) -> HttpResponse:
    """acknowledge / resolve (with a note) / notify the merchant / open a case for one invoice."""
    user = acting_user(request)
    require(user, Action.HANDLE_INCIDENTS)
    incident = incidents.get_incident(incident_id)
    action = request.POST.get("action", "")
    version = whole_number_or_none(request.POST.get("version", ""))
    note = request.POST.get("note", "")
    try:
        if action == "acknowledge":
            incidents.acknowledge(incident_id=incident.pk, by=user, version=version)
            messages.success(
                request, gettext("Incident {id} is acknowledged: you are on it.").format(id=incident.pk)
            )
        elif action == "resolve":
            incidents.resolve(incident_id=incident.pk, by=user, note=note, version=version)
            messages.success(request, gettext("Incident {id} is resolved.").format(id=incident.pk))
        elif action == "notify":
            told = notify_merchant(by=user, incident=incident)
            messages.success(
                request,
                ngettext(
                    "%(count)d person of the merchant was notified.",
                    "%(count)d people of the merchant were notified.",
                    told,
                )
                % {"count": told},
            )
        elif action == "open_case":
            number = request.POST.get("number", "")
            finding = findings.active_for_merchant(incident.merchant_id or 0).filter(number=number).first()
            if finding is None:
                raise FindingNotFoundError(number=number)
            case, created = open_case_for_finding(user=user, finding=finding)
            text = (
                gettext(
                    "A case for invoice {number} was prepared from the ledger; "
                    "the merchant was asked to check and submit it."
                )
                if created
                else gettext("Invoice {number} already has a case under way ({case}).")
            )
            messages.success(request, text.format(number=number, case=case.acceptance_no or gettext("draft")))
        else:
            raise UnknownIncidentActionError(_("There is no such action on an integrity incident."))
    except FapiaoError as failure:
        incident.refresh_from_db()
        errors = [failure.render(gettext)]
        if hasattr(failure, "errors"):
            errors += [error.render(gettext) for error in failure.errors]
        return render(request, "ops/incident.html", _context(incident, note=note, errors=errors), status=200)
    return redirect("incident", incident_id=incident.pk)
