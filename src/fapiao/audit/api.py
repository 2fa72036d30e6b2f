"""/api/v1/audit — the audit trail for auditors: search records, list the logs with their latest
signed heads, and prove one record's inclusion in a signed head (checkable outside this system
with the ledger's public keys)."""

from __future__ import annotations

import base64
from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest
from ninja import Router

from fapiao.audit import schemas, selectors
from fapiao.audit.models import AuditHead, AuditLog, AuditRecord
from fapiao.audit.store import fetch_nodes, record_bytes_of
from fapiao.core import merkle
from fapiao.core.errors import FieldError, NotFoundError, ValidationFailed, _
from fapiao.platform.openapi import documented
from fapiao.platform.requests import page_param

router = Router(tags=["audit"])


class AuditRecordNotFoundError(NotFoundError):
    """No such audit record."""

    code = "audit_record_not_found"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _head_document(head: AuditHead, log: str) -> dict[str, Any]:
    return {
        "log": log,
        "size": head.size,
        "root": _b64(bytes(head.root)),
        "at": head.at,
        "key_id": head.key_id,
    }


@router.get(
    "",
    response=schemas.AuditPage,
    openapi_extra=documented(extra={"parameters": schemas.FILTERS}),
    summary="Search the audit trail",
)
def search(request: HttpRequest) -> dict[str, Any]:
    """Filters: ``actor`` (username or part of the name), ``action`` (``invoice.issue`` or a family
    such as ``invoice``), ``target``, ``target_type``, ``merchant`` (a USCC or ``staff``),
    ``date_from``/``date_to`` (Beijing dates); newest first, 50 a page."""
    filters = selectors.parse_filters(request.GET.dict())
    page_number = page_param(request, maximum=selectors.MAX_PAGE)
    queryset = selectors.audit_records(user=request.user, filters=filters)  # type: ignore[arg-type]
    paginator = Paginator(queryset, selectors.PAGE_SIZE)
    page = paginator.get_page(page_number) if page_number <= max(paginator.num_pages, 1) else []
    return {
        "items": [selectors.record_representation(row) for row in page],
        "total": paginator.count,
        "page": page_number,
    }


@router.get(
    "/logs",
    response=schemas.AuditLogs,
    openapi_extra=documented(),
    summary="Audit logs and their signed heads",
)
def logs(request: HttpRequest) -> dict[str, Any]:
    items = []
    for log in selectors.audit_logs(user=request.user):  # type: ignore[arg-type]
        head = AuditHead.objects.filter(log=log).order_by("-size").first()
        items.append(
            {
                "log": log.name,
                "merchant": log.merchant.uscc if log.merchant else None,
                "size": log.size,
                "head": _head_document(head, log.name) if head else None,
                "signature": head.signature if head else None,
            }
        )
    return {"logs": items}


@router.get(
    "/logs/{log}/proof",
    response=schemas.AuditProof,
    openapi_extra=documented(404),
    summary="Prove one audit record's inclusion",
)
def proof(request: HttpRequest, log: str, index: int) -> dict[str, Any]:
    """``log`` is a USCC or ``staff``; ``index`` the record's index.  Answers the record's leaf
    bytes, the latest signed head and the RFC 9162 inclusion proof, like a ledger receipt."""
    name = "audit:staff" if log.lower() == "staff" else f"audit:{log.upper()}"
    audit_log = selectors.audit_logs(user=request.user).filter(name=name).first()  # type: ignore[arg-type]
    if index < 0:
        raise ValidationFailed([FieldError("index", "required", _("Give the record's index, from 0."))])
    row = (
        AuditRecord.objects.filter(log=audit_log, seq=index).select_related("log").first()
        if isinstance(audit_log, AuditLog)
        else None
    )
    head = AuditHead.objects.filter(log=audit_log).order_by("-size").first() if row else None
    if row is None or head is None or head.size <= index:
        raise AuditRecordNotFoundError()
    nodes = fetch_nodes(row.log_id, merkle.inclusion_needs(index, head.size))
    path = merkle.inclusion_proof(index, head.size, nodes)
    return {
        "format": "fapiao-audit-proof/1",
        "log": name,
        "index": index,
        "record": _b64(record_bytes_of(row)),
        "head": _head_document(head, name),
        "signature": head.signature,
        "proof": [_b64(item) for item in path],
    }
