"""OpenAPI shapes of the audit API's answers (docs/api.md, "Audit trail")."""

from __future__ import annotations

from typing import Any

from ninja import Schema
from pydantic import Field

from fapiao.platform.openapi import PAGE_PARAMETER, query_parameter


class AuditPage(Schema):
    items: list[dict[str, Any]]
    total: int
    page: int


class AuditHead(Schema):
    log: str = Field(examples=["audit:staff"])
    size: int
    root: str = Field(description="RFC 9162 root hash, base64.")
    at: str
    key_id: str


class AuditLogOut(Schema):
    log: str
    merchant: str | None
    size: int
    head: AuditHead | None
    signature: str | None


class AuditLogs(Schema):
    logs: list[AuditLogOut]


class AuditProof(Schema):
    format: str = Field(examples=["fapiao-audit-proof/1"])
    log: str
    index: int
    record: str = Field(description="The record's leaf bytes, base64.")
    head: AuditHead
    signature: str
    proof: list[str]


FILTERS = [
    query_parameter("actor", "Username, or part of the actor's name."),
    query_parameter("action", "An action (`invoice.issue`) or its family (`invoice`)."),
    query_parameter("target", "The target's id or its representation."),
    query_parameter("target_type", "The target's type (`invoice`, `user`…)."),
    query_parameter("merchant", "A USCC, or `staff` for staff actions."),
    query_parameter("date_from", "First Beijing date, YYYY-MM-DD.", type="string", format="date"),
    query_parameter("date_to", "Last Beijing date, YYYY-MM-DD.", type="string", format="date"),
    PAGE_PARAMETER,
]
