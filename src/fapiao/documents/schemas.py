"""OpenAPI shapes of the documents API: deliveries, the public check, and the binary answers."""

from __future__ import annotations

from typing import Any, Literal

from ninja import Schema
from pydantic import ConfigDict, Field


class DeliveryIn(Schema):
    model_config = ConfigDict(json_schema_extra={"example": {"to": "finance@buyer.example.cn"}})

    to: str = Field(description="One e-mail address: the buyer's, from the address book or typed.")


class DeliveryOut(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": "0b7c2f5e-3a44-4c1e-9a55-0f3f7c3d2a10",
                "to": "f******@buyer.example.cn",
                "state": "sent",
                "attempts": 1,
                "created_at": "2026-11-28T02:03:04Z",
                "sent_at": "2026-11-28T02:03:05Z",
                "next_attempt_at": None,
                "error_code": "",
                "error": "",
                "created_by": "王开票",
                "documents": [
                    {"kind": "invoice_pdf", "name": "26110000000000000001.pdf", "sha256": "3f1c…"},
                    {"kind": "invoice_xml", "name": "26110000000000000001.xml", "sha256": "9ab2…"},
                    {"kind": "receipt_pdf", "name": "26110000000000000001-receipt.pdf", "sha256": "77d0…"},
                ],
            }
        }
    )

    id: str
    to: str = Field(description="The address, masked.")
    state: Literal["sending", "sent", "failed", "undeliverable"]
    attempts: int
    created_at: str
    sent_at: str | None
    next_attempt_at: str | None = Field(description="When a failed delivery is tried again.")
    error_code: str
    error: str
    created_by: str
    documents: list[dict[str, str]]


class DeliveryList(Schema):
    items: list[DeliveryOut]


class CheckSeller(Schema):
    name: str
    tax_id: str


class CheckOut(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "found": True,
                    "number": "26110000000000000001",
                    "issued_on": "2026-11-28",
                    "total_with_tax": "1060.00",
                    "seller": {"name": "北京示例科技有限公司", "tax_id": "91110108MA01ABCD84"},
                    "kind": "ordinary",
                    "colour": "blue",
                    "state": "normal",
                },
                {
                    "found": False,
                    "number": "26110000000000000001",
                    "issued_on": "2026-11-28",
                    "total_with_tax": "1060.01",
                },
            ]
        }
    )

    found: bool
    number: str
    issued_on: str
    total_with_tax: str
    seller: CheckSeller | None = None
    kind: str | None = None
    colour: str | None = None
    state: str | None = None


def binary(content_type: str, description: str, *, example_name: str) -> dict[str, Any]:
    """An ``openapi_extra`` for an answer that is a file, with its ``Content-Disposition``."""
    return {
        "responses": {
            200: {
                "description": description,
                "headers": {
                    "Content-Disposition": {
                        "schema": {"type": "string"},
                        "example": f'attachment; filename="{example_name}"',
                    },
                    "X-Content-SHA256": {
                        "schema": {"type": "string"},
                        "description": "The SHA-256 of the file: the same on every download.",
                    },
                },
                "content": {content_type: {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    }
