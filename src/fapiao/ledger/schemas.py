"""OpenAPI shapes of the ledger API's answers (docs/api.md, "Ledger")."""

from __future__ import annotations

from ninja import Schema
from pydantic import Field


class PublicKey(Schema):
    key_id: str
    public_key: str = Field(description="Ed25519 public key, base64.")
    created_at: str | None
    status: str = Field(examples=["active"])
    compromised_since: str | None


class PublicKeys(Schema):
    keys: list[PublicKey]


class TreeHead(Schema):
    log: str = Field(description="The merchant's USCC.")
    size: int
    root: str = Field(description="RFC 9162 root hash, base64.")
    at: str
    key_id: str


class SignedHead(Schema):
    head: TreeHead
    signature: str


class Entries(Schema):
    entries: list[str] = Field(description="Base64 of each entry's exact bytes.")


class InclusionProof(Schema):
    index: int
    size: int
    proof: list[str]


class ConsistencyProof(Schema):
    proof: list[str]
