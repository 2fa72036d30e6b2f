"""OpenAPI shapes of the case API.  Bodies are validated by the core and the services, which report
every problem at once; these models document them, with examples."""

from __future__ import annotations

from typing import Any, Literal

from ninja import Schema
from pydantic import ConfigDict, Field

from fapiao.invoices.schemas import IDEMPOTENCY_HEADER, LineIn, inline_schema
from fapiao.platform.openapi import PAGE_PARAMETER, link, query_parameter


def request_body(model: type[Schema], *, idempotent: bool = False) -> dict[str, Any]:
    """An ``openapi_extra`` documenting a JSON body the services parse, with the model's example
    (and the ``Idempotency-Key`` header when the operation honours it)."""
    schema = inline_schema(model.model_json_schema())
    content: dict[str, Any] = {"schema": schema}
    if "example" in schema:
        content["example"] = schema["example"]
    extra: dict[str, Any] = {"requestBody": {"required": True, "content": {"application/json": content}}}
    if idempotent:
        extra["parameters"] = [IDEMPOTENCY_HEADER]
    return extra


# ``POST /cases/{case_id}/evidence``: a multipart upload, documented by hand (not a JSON body).
EVIDENCE_UPLOAD: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "type"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "type": {
                            "type": "string",
                            "enum": [
                                "contract",
                                "bank_statement",
                                "stub_copy",
                                "e_invoice",
                                "system_receipt",
                                "email",
                                "other",
                            ],
                        },
                    },
                }
            }
        },
    }
}

CLAIM_EXAMPLE: dict[str, Any] = {
    "number": "26112000100000000123",
    "issued_on": "2026-11-03",
    "buyer": {"name": "北京买方贸易有限公司", "tax_id": "91110000MA01XKQ2TQ"},
    "total_with_tax": "1060.00",
    "narrative": "11月3日开具后上传中断，系统中查不到该发票。",
}


class ClaimBuyerIn(Schema):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(examples=["北京买方贸易有限公司"])
    tax_id: str | None = Field(None, examples=["91110000MA01XKQ2TQ"])


class CaseIn(Schema):
    """A draft case: the claimed invoice and what happened."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"example": CLAIM_EXAMPLE},
    )
    number: str = Field(description="20-digit number, or 代码-号码 for a legacy invoice.")
    issued_on: str = Field(description="YYYY-MM-DD")
    kind: Literal["ordinary", "special"] | None = None
    buyer: ClaimBuyerIn
    total_with_tax: str = Field(examples=["1060.00"])
    total_amount: str | None = Field(None, examples=["1000.00"])
    total_tax: str | None = Field(None, examples=["60.00"])
    tax_rate: str | None = Field(
        None, description="The rate of an invoice claimed by its totals (without lines).", examples=["0.06"]
    )
    lines: list[LineIn] | None = Field(
        None, description="The invoice's lines, when known: they must add up to the claimed totals."
    )
    narrative: str = Field(description="What happened, up to 2,000 characters.")


class CaseEditIn(CaseIn):
    """The whole claim again, with the version it edits (a draft or a rejected case)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"example": {"version": 4, **CLAIM_EXAMPLE, "total_with_tax": "1160.00"}},
    )
    version: int = Field(description="The case's version as last read; a stale version is 409.")


class RegisterIn(Schema):
    merchant: str = Field(..., description="The merchant's unified social credit code (USCC).")
    channel: str = Field(..., description="How the merchant reached support: phone, email or mail_in.")
    claim: CaseIn = Field(..., description="The claim, as POST /api/v1/cases takes it.")


class VersionIn(Schema):
    version: int = Field(description="The case's version as last read; a stale version is 409.")


class ReasonIn(VersionIn):
    reason: str | None = Field(None, description="Required to reopen; optional to withdraw.")


class DecisionIn(VersionIn):
    reason: str | None = None
    reason_template: str | None = Field(
        None, description="A template code (see GET /cases/reasons); its text is put before `reason`."
    )


class RequestInfoIn(VersionIn):
    body: str = Field(examples=["请补充与买方签订的合同扫描件。"])
    items: list[str] | None = Field(None, examples=[["合同扫描件", "银行回单"]])


class MessageIn(Schema):
    body: str
    on_behalf: bool = Field(
        False, description="Support only: records what the merchant said by phone or paper."
    )


class AssignIn(Schema):
    assignee: str = Field(description="The reviewer's username.")


class ResolveIn(VersionIn):
    """The remedy only: what it writes is the merchant's ledger entry of the number or the claim
    as reviewed, never content sent here (an ``invoice`` member is refused with 422)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"example": {"version": 7, "remedy": "restore", "note": "合同与银行回单一致。"}},
    )
    remedy: Literal["restore", "reissue", "repair", "replay"]
    note: str | None = Field(
        None, description="For the timeline and the audit trail, up to 2,000 characters."
    )


class CaseOut(Schema):
    model_config = ConfigDict(extra="allow")
    case_id: str
    acceptance_no: str | None
    state: str
    version: int


class CasePage(Schema):
    items: list[dict[str, Any]]
    total: int
    page: int
    counts: dict[str, int]


class EvidenceOut(Schema):
    model_config = ConfigDict(extra="allow")
    id: str
    type: str
    filename: str
    sha256: str
    check: dict[str, Any]


class ResolveOut(Schema):
    case: dict[str, Any]
    invoice: dict[str, Any]
    receipt: dict[str, Any] | None


# --- what the document says beyond the bodies: the list's filters and the links between answers ---

FILTERS = [
    query_parameter("state", "Case states, comma-separated."),
    query_parameter("merchant", "A merchant's USCC."),
    query_parameter("overdue", "Only cases past their deadline (`1`)."),
    query_parameter("older_than_days", "Only cases opened more than this many days ago.", type="integer"),
    query_parameter("amount_min", "Least claimed total with tax, yuan."),
    query_parameter("amount_max", "Most claimed total with tax, yuan."),
    query_parameter("assignee", "`me`, `none` or a reviewer's username."),
    query_parameter("q", "受理编号 or invoice number."),
    query_parameter("unread", "Only cases with merchant messages no staff member has read (`1`)."),
    PAGE_PARAMETER,
]


def _case_links(at: str = "") -> dict[str, Any]:
    """Links from an answer holding a case (at ``at`` in the body) to the actions on that case,
    each sent with the case's id and its current version."""
    case_id = f"$response.body#{at}/case_id"
    version = f"$response.body#{at}/version"

    def action(name: str, description: str) -> dict[str, Any]:
        operation = f"fapiao_recovery_api_{name.replace('-', '_')}"
        return link(operation, description, case_id=case_id, body_version=version)

    return {
        "GetCase": link("fapiao_recovery_api_detail", "The case as it is now.", case_id=case_id),
        "EditClaim": action("edit", "Edit the claim (a draft or a rejected case)."),
        "Submit": action("submit", "Submit the draft."),
        "Resubmit": action("resubmit", "Submit a rejected case again."),
        "Withdraw": action("withdraw", "Withdraw the case."),
        "Claim": action("claim", "A reviewer claims it."),
        "RequestInfo": action("request-info", "Ask the merchant for more."),
        "Approve": action("approve", "Approve it."),
        "Reject": action("reject", "Reject it."),
        "ReturnToReview": action("return-to-review", "Send an approved case back to review."),
        "Resolve": action("resolve", "Restore or re-issue the invoice."),
        "Confirm": action("confirm", "The merchant confirms the result."),
        "Reopen": action("reopen", "Reopen it within the window."),
        "Release": link("fapiao_recovery_api_release", "Give the claim back.", case_id=case_id),
        "Message": link("fapiao_recovery_api_message", "Write a message.", case_id=case_id),
        "Receipt": link("fapiao_recovery_api_receipt_pdf", "The submission receipt.", case_id=case_id),
    }


CASE_LINKS = _case_links()
#: From a resolved case to its confirmation and to the invoice written.
RESOLVE_LINKS = {
    **_case_links("/case"),
    **{
        name: link(f"fapiao_invoices_api_{operation}", description, number="$response.body#/invoice/number")
        for name, operation, description in (
            ("GetInvoice", "detail", "The invoice written."),
            ("InvoiceReceipt", "receipt", "A fresh receipt for it."),
            ("RedLetter", "red_letter", "Red-letter it."),
        )
    },
}
