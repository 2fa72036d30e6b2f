"""The API's shared schemas: the problem document every error is (RFC 9457)."""

from __future__ import annotations

from ninja import Schema
from pydantic import Field


class FieldProblem(Schema):
    field: str = Field(description="Dotted path of the field (`lines.0.tax_rate`), or `body`/`request`.")
    code: str = Field(description="Stable English code (`unsupported_rate`).")
    message: str = Field(description="Human message, Chinese unless `Accept-Language: en`.")


class Problem(Schema):
    """An RFC 9457 problem document: every error of this API, as `application/problem+json`."""

    type: str = Field(examples=["https://fapiao-vault.invalid/problems/validation_failed"])
    title: str
    status: int
    detail: str
    errors: list[FieldProblem]
