"""OpenAPI shapes of the invoice API.  The request bodies are validated by the core
(``fapiao.core.invoice``), which reports every problem at once; these models document them."""

from __future__ import annotations

from typing import Any, Literal

from ninja import Schema
from pydantic import ConfigDict, Field

from fapiao.core.choices import Colour, Direction, InvoiceState
from fapiao.platform.openapi import PAGE_PARAMETER, link, query_parameter


class BuyerIn(Schema):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(examples=["北京买方贸易有限公司"])
    tax_id: str | None = Field(None, examples=["91110000MA01XKQ2TQ"])
    address: str | None = None
    phone: str | None = None
    bank: str | None = None
    bank_account: str | None = None


class LineIn(Schema):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(examples=["*信息技术服务*软件开发"])
    tax_code: str | None = Field(None, examples=["3040201000000000000"])
    spec: str | None = None
    unit: str | None = Field(None, examples=["项"])
    quantity: str = Field(examples=["1"], description="Decimal string, up to 8 decimal places.")
    unit_price: str = Field(
        examples=["1000.00"], description="Decimal string, up to 8 decimal places, excl. tax."
    )
    tax_rate: str = Field(
        examples=["0.06"], description='"0.13", "0.09", "0.06", …, "exempt" or "not_taxable".'
    )
    amount: str | None = Field(
        None, description="If sent, must equal quantity × unit price rounded to the fen."
    )
    tax: str | None = Field(None, description="If sent, must equal amount × rate rounded to the fen.")


INVOICE_EXAMPLE: dict[str, Any] = {
    "kind": "ordinary",
    "buyer": {"name": "北京买方贸易有限公司", "tax_id": "91110000MA01XKQ2TQ"},
    "lines": [
        {
            "name": "*信息技术服务*软件开发",
            "tax_code": "3040201000000000000",
            "unit": "项",
            "quantity": "1",
            "unit_price": "1000.00",
            "tax_rate": "0.06",
        }
    ],
}


class InvoiceIn(Schema):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": INVOICE_EXAMPLE})
    kind: Literal["ordinary", "special"]
    buyer: BuyerIn
    lines: list[LineIn]
    remark: str | None = None


class BatchItemIn(Schema):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(
        max_length=255,
        examples=["order-20260131-0001"],
        description="The client's key for this invoice: its Idempotency-Key, unique in the batch.",
    )
    invoice: InvoiceIn


BATCH_EXAMPLE: dict[str, Any] = {
    "all_or_nothing": False,
    "items": [
        {"key": "order-20260131-0001", "invoice": INVOICE_EXAMPLE},
        {"key": "order-20260131-0002", "invoice": INVOICE_EXAMPLE},
    ],
}


class BatchIn(Schema):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": BATCH_EXAMPLE})
    items: list[BatchItemIn] = Field(min_length=1, max_length=1000)
    all_or_nothing: bool = Field(
        False, description="true: any bad item refuses the whole batch (422) and nothing is issued."
    )


class RedLetterLineIn(Schema):
    line_no: int
    quantity: str


class RedLetterIn(Schema):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"full": True}})
    full: bool | None = None
    lines: list[RedLetterLineIn] | None = None
    confirmation_no: str | None = Field(None, description="红字确认单编号, where there is one.")


class LineOut(Schema):
    no: int
    name: str
    tax_code: str
    spec: str
    unit: str
    quantity: str
    unit_price: str
    tax_rate: str
    amount: str
    tax: str
    original_line_no: int | None


class PartyOut(Schema):
    name: str
    tax_id: str | None


class BuyerOut(PartyOut):
    address: str
    phone: str
    bank: str
    bank_account: str


class InvoiceOut(Schema):
    number: str = Field(examples=["26110100000000000001"])
    kind: str
    colour: Literal["blue", "red"]
    direction: str
    state: str
    origin: str
    issued_on: str
    seller: PartyOut
    buyer: BuyerOut
    lines: list[LineOut]
    total_amount: str
    total_tax: str
    total_with_tax: str
    total_with_tax_in_words: str = Field(examples=["壹仟零陆拾圆整"])
    original_number: str | None
    confirmation_no: str | None
    remark: str
    receipt: dict[str, Any] | None = Field(None, description="fapiao-receipt/1")


class BatchItemOut(Schema):
    key: str
    status: int = Field(description="201 issued (or replayed), else the item's problem status.")
    replayed: bool | None = Field(None, description="true: issued earlier under this key.")
    invoice: InvoiceOut | None = Field(None, description="The invoice with its receipt (status 201).")
    problem: dict[str, Any] | None = Field(None, description="The item's problem document (RFC 9457).")


class BatchOut(Schema):
    all_or_nothing: bool
    count: int
    issued: int
    failed: int
    items: list[BatchItemOut]


class InvoiceSummary(Schema):
    number: str
    kind: str
    colour: str
    direction: str
    state: str
    origin: str
    issued_on: str
    buyer_name: str
    total_amount: str
    total_tax: str
    total_with_tax: str


class InvoicePage(Schema):
    items: list[InvoiceSummary]
    total: int
    page: int


def inline_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$defs`` written in place of their ``$ref``s.

    A body we parse ourselves is not a ninja model, so its nested models never reach the OpenAPI
    document's components, and a ``#/components/schemas/…`` reference to them would dangle.
    """
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            name = str(node.get("$ref", "")).rsplit("/", 1)[-1]
            if name in definitions:
                rest = {key: value for key, value in node.items() if key != "$ref"}
                return resolve({**definitions[name], **rest})
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


IDEMPOTENCY_HEADER: dict[str, Any] = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "maxLength": 255},
    "description": "A retry with the same key and body returns the original result.",
}


def body_schema(model: type[Schema]) -> dict[str, Any]:
    """An ``openapi_extra`` documenting a JSON body we parse ourselves, with the model's example."""
    schema = inline_schema(model.model_json_schema())
    content: dict[str, Any] = {"schema": schema}
    if "example" in schema:
        content["example"] = schema["example"]
    return {
        "requestBody": {"required": True, "content": {"application/json": content}},
        "parameters": [IDEMPOTENCY_HEADER],
    }


# --- what the document says beyond the bodies: the search's filters and the links between answers ---

FILTERS = [
    query_parameter("number", "20-digit number, or 代码-号码 for a legacy invoice."),
    query_parameter("date_from", "First issue date, YYYY-MM-DD.", type="string", format="date"),
    query_parameter("date_to", "Last issue date, YYYY-MM-DD.", type="string", format="date"),
    query_parameter("buyer", "Part of the buyer's name, or the buyer's whole taxpayer number."),
    query_parameter("amount_min", "Least total with tax, yuan (`100.00`)."),
    query_parameter("amount_max", "Most total with tax, yuan."),
    query_parameter("state", "Invoice state.", type="string", enum=[state.value for state in InvoiceState]),
    query_parameter("direction", "outgoing or incoming.", type="string", enum=[d.value for d in Direction]),
    query_parameter("colour", "blue or red.", type="string", enum=[colour.value for colour in Colour]),
    query_parameter("merchant", "A merchant's USCC (staff)."),
    PAGE_PARAMETER,
]
NUMBER = "$response.body#/number"
#: From an issued invoice (or a red letter) to what can be done with it next.
INVOICE_LINKS = {
    201: {
        "GetInvoice": link("fapiao_invoices_api_detail", "The invoice just written.", number=NUMBER),
        "RedLetter": link("fapiao_invoices_api_red_letter", "Red-letter it.", number=NUMBER),
        "Receipt": link("fapiao_invoices_api_receipt", "A fresh receipt for it.", number=NUMBER),
    }
}
