"""/api/v1/ledger — public keys, signed heads, entries and proofs (docs/api.md)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.http import HttpRequest, JsonResponse
from ninja import Router

from fapiao.core.errors import FieldError, ValidationFailed, _
from fapiao.ledger import schemas, selectors
from fapiao.platform import keys
from fapiao.platform.openapi import documented

router = Router(tags=["ledger"])


def _json(body: dict[str, Any]) -> JsonResponse:
    """The answer as built (the documented schema describes it; ninja does not re-validate it)."""
    return JsonResponse(body, json_dumps_params={"ensure_ascii": False})


@router.get(
    "/public-keys",
    auth=None,
    response=schemas.PublicKeys,
    openapi_extra=documented(public=True),
    summary="Every signing key, with its status",
)
def public_keys(request: HttpRequest) -> JsonResponse:
    keys.signing_key()  # a fresh install creates its first key here
    return _json(keys.registry().to_json())


@router.get(
    "/{log}/head",
    response=schemas.SignedHead,
    openapi_extra=documented(404),
    summary="The latest signed tree head",
)
def head(request: HttpRequest, log: str) -> JsonResponse:
    merchant = selectors.log_for(user=request.user, log=log)  # type: ignore[arg-type]
    return _json(selectors.signed_head(merchant))


@router.get(
    "/{log}/entries",
    response=schemas.Entries,
    openapi_extra=documented(404),
    summary="Entries [start, end) as base64 of their exact bytes",
)
def entries(request: HttpRequest, log: str, start: int, end: int) -> JsonResponse:
    merchant = selectors.log_for(user=request.user, log=log)  # type: ignore[arg-type]
    return _json({"entries": selectors.entries(merchant, start, end)})


@router.get(
    "/{log}/proof/inclusion",
    response=schemas.InclusionProof,
    openapi_extra=documented(404),
    summary="Inclusion proof by index or by leaf hash",
)
def inclusion(
    request: HttpRequest, log: str, index: int | None = None, size: int | None = None, leaf_hash: str = ""
) -> JsonResponse:
    merchant = selectors.log_for(user=request.user, log=log)  # type: ignore[arg-type]
    if leaf_hash:
        try:
            digest = base64.b64decode(leaf_hash, validate=True)
        except (binascii.Error, ValueError):
            digest = b""
        if len(digest) != 32:
            raise ValidationFailed(
                [FieldError("leaf_hash", "bad_base64", _("Send the leaf hash as base64."))]
            )
        index = selectors.index_of_leaf(merchant, digest)
    if index is None:
        raise ValidationFailed([FieldError("index", "required", _("Give an index or a leaf hash."))])
    found_index, found_size, proof = selectors.inclusion(merchant, index, size)
    return _json({"index": found_index, "size": found_size, "proof": proof})


@router.get(
    "/{log}/proof/consistency",
    response=schemas.ConsistencyProof,
    openapi_extra=documented(404),
    summary="Consistency proof between two sizes",
)
def consistency(request: HttpRequest, log: str, first: int, second: int) -> JsonResponse:
    merchant = selectors.log_for(user=request.user, log=log)  # type: ignore[arg-type]
    return _json({"proof": selectors.consistency(merchant, first, second)})
