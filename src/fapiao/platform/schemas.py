"""The API's shared schemas: the problem document every error is (RFC 9457)."""

from __future__ import annotations

from ninja import Schema


class Problem(Schema):
    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]]
