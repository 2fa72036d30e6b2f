"""Ledger reads.  Logs are named by the merchant's USCC; merchant users see their own only."""

from __future__ import annotations

import base64
import functools
from typing import Any

from django.db import connection

from fapiao.accounts.models import Merchant, User
from fapiao.accounts.permissions import Action, require
from fapiao.core import merkle
from fapiao.core.errors import InvalidValueError, NotFoundError, _
from fapiao.ledger.models import LogEntry, TreeHead
from fapiao.ledger.services import fetch_nodes, head_document

MAX_ENTRIES_PER_PAGE = 1000


class LogNotFoundError(NotFoundError):
    """No such log."""

    code = "log_not_found"


def log_for(*, user: User, log: str) -> Merchant:
    require(user, Action.READ_LEDGER)
    queryset = Merchant.objects.filter(uscc=log.upper())
    if user.is_merchant_user:
        queryset = queryset.filter(pk=user.merchant_id or -1)
    merchant = queryset.first()
    if merchant is None:
        raise LogNotFoundError(_("No such log."))
    return merchant


def signed_head(merchant: Merchant) -> dict[str, Any]:
    head = TreeHead.objects.filter(merchant=merchant).order_by("-size").first()
    if head is None:
        raise LogNotFoundError(_("This log has no entries yet."))
    return {"head": head_document(head, merchant.uscc), "signature": head.signature}


@functools.cache
def _head_sql(vendor: str) -> tuple[str, str]:
    del vendor  # the cache key: names are quoted per database
    table = connection.ops.quote_name(TreeHead._meta.db_table)
    latest = f"SELECT MAX(size) FROM {table} WHERE merchant_id = %s"  # noqa: S608  our names
    exact = f"SELECT 1 FROM {table} WHERE merchant_id = %s AND size = %s"  # noqa: S608  our names
    return latest, exact


def _current_size(merchant: Merchant) -> int:
    """The size of the latest signed head (raw SQL: a proof's hot path, where the ORM's query
    building cost more than the query)."""
    with connection.cursor() as cursor:
        cursor.execute(_head_sql(connection.vendor)[0], [merchant.pk])
        row = cursor.fetchone()
    return int(row[0] or 0) if row else 0


def _is_head_size(merchant: Merchant, size: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(_head_sql(connection.vendor)[1], [merchant.pk, size])
        return cursor.fetchone() is not None


def _out_of_range(message: str, **params: Any) -> InvalidValueError:
    return InvalidValueError(message, code="out_of_range", **params)


def entries(merchant: Merchant, start: int, end: int) -> list[str]:
    size = _current_size(merchant)
    if not 0 <= start < end <= size or end - start > MAX_ENTRIES_PER_PAGE:
        raise _out_of_range(
            _("Ask for 0 ≤ start < end ≤ {size}, at most {most} entries at a time."),
            size=size,
            most=MAX_ENTRIES_PER_PAGE,
        )
    rows = LogEntry.objects.filter(merchant=merchant, seq__gte=start, seq__lt=end).order_by("seq")
    return [base64.b64encode(bytes(body)).decode() for body in rows.values_list("body", flat=True)]


def inclusion(merchant: Merchant, index: int, size: int | None) -> tuple[int, int, list[str]]:
    current = _current_size(merchant)
    latest = size is None or size == current  # the latest head exists by definition
    size = current if size is None else size
    if not 0 <= index < size <= current or not (latest or _is_head_size(merchant, size)):
        raise _out_of_range(
            _("Ask for 0 ≤ index < size, with size the size of a signed head (the latest is {size})."),
            size=current,
        )
    nodes = fetch_nodes(merchant.pk, merkle.inclusion_needs(index, size))
    proof = merkle.inclusion_proof(index, size, nodes)
    return index, size, [base64.b64encode(item).decode() for item in proof]


def index_of_leaf(merchant: Merchant, leaf_hash: bytes) -> int:
    seq = (
        LogEntry.objects.filter(merchant=merchant, leaf_hash=leaf_hash).values_list("seq", flat=True).first()
    )
    if seq is None:
        raise LogNotFoundError(_("No entry with this leaf hash."))
    return int(seq)


def consistency(merchant: Merchant, first: int, second: int) -> list[str]:
    current = _current_size(merchant)
    if not 0 < first <= second <= current:
        raise _out_of_range(_("Ask for 0 < first ≤ second ≤ {size}."), size=current)
    nodes = fetch_nodes(merchant.pk, merkle.consistency_needs(first, second))
    return [base64.b64encode(item).decode() for item in merkle.consistency_proof(first, second, nodes)]
