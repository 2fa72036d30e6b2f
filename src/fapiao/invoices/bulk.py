"""Bulk issuing (``POST /api/v1/invoice-batches``): up to 1,000 invoices in one request and one
durable unit of work.

Every item carries its own client key, which is that invoice's idempotency key (the same
namespace as the single POST's ``Idempotency-Key``: an invoice sent alone with key K and again in a
batch under K is issued once).  The batch's own ``Idempotency-Key`` replays the whole answer.

Each item is checked and its buyer sealed before the writer runs; the good ones are then stored
through :func:`fapiao.invoices.services.issue_in_unit`, the single POST's own path, all in one
transaction: one commit, one signed head per log, shared by every receipt of the batch.  They are
stored first without a savepoint each; should an item fail there, that pass is rolled back whole
and the batch runs again with each item in its own savepoint, so a bad item undoes only itself.
The answer comes after that commit.  One bad item does not stop the others, unless the request
says ``all_or_nothing``: then any bad item refuses the whole batch (422, every problem at
``items.<i>…``) and nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone

from fapiao.accounts.models import User
from fapiao.accounts.permissions import Action, require
from fapiao.core.errors import FapiaoError, FieldError, InvalidValueError, ValidationFailed, _
from fapiao.invoices.services import PreparedIssue, WriteResult, issue_in_unit, merchant_of, prepare_issue
from fapiao.platform import idempotency, problems, ratelimit
from fapiao.platform.uow import UnitOfWork, write

MAX_ITEMS = 1000
RATE_SCOPE = "invoice-batches"
RATE_WINDOW = 60  # seconds: FAPIAO_BATCHES_PER_MINUTE per token


class BatchRateLimitedError(FapiaoError):
    """Too many batches from this token in the last minute; retry after {seconds} seconds."""

    status = 429
    code = "batch_rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(seconds=retry_after)
        self.retry_after = retry_after


class _NeedsSavepointsError(Exception):
    """An item failed in the fast pass, which stores the items without a savepoint each (two
    statements less per item): the whole pass is rolled back, and the batch runs again with each
    item in its own savepoint, so that the failing item undoes only itself."""


@dataclass
class BatchResult:
    """The answer to a batch: 200 with one result per item (or its replay)."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


@dataclass
class _Item:
    index: int
    key: str
    prepared: PreparedIssue | None = None
    problem: FapiaoError | None = None
    result: WriteResult | None = None


@dataclass(frozen=True)
class BatchRequest:
    items: list[tuple[str, object]]  # (client key, invoice payload)
    all_or_nothing: bool = False
    errors: list[FieldError] = field(default_factory=list)


def check_rate(key: str) -> None:
    """Count one batch of ``key`` (a token) in the shared limiter; refuse past the minute's limit.

    Called before any work, outside the transaction, so a refused or failed batch still counts."""
    decision = ratelimit.hit(RATE_SCOPE, key, settings.FAPIAO_BATCHES_PER_MINUTE, RATE_WINDOW)
    if not decision.allowed:
        raise BatchRateLimitedError(decision.retry_after)


def parse_batch(payload: object) -> BatchRequest:
    """The batch's shape: an object with 1 to 1,000 ``items``, each ``{"key": …, "invoice": {…}}``
    with a key of its own.  Anything else is refused whole (422, every problem listed)."""
    if not isinstance(payload, dict):
        raise ValidationFailed([FieldError("body", "invalid", _("The body must be a JSON object."))])
    errors = [
        FieldError(name, "unknown_field", _("Unknown field."))
        for name in payload
        if name not in {"items", "all_or_nothing"}
    ]
    all_or_nothing = payload.get("all_or_nothing", False)
    if not isinstance(all_or_nothing, bool):
        errors.append(FieldError("all_or_nothing", "invalid", _("Must be true or false.")))
    raw = payload.get("items")
    if not isinstance(raw, list):
        errors.append(FieldError("items", "required", _("A list of invoices to issue is required.")))
        raise ValidationFailed(errors)
    if not raw:
        errors.append(FieldError("items", "empty", _("The batch has no invoices.")))
    elif len(raw) > MAX_ITEMS:
        errors.append(
            FieldError(
                "items",
                "too_many",
                _("A batch holds at most {max} invoices; this one has {count}."),
                {"max": MAX_ITEMS, "count": len(raw)},
            )
        )
    items: list[tuple[str, object]] = []
    first_seen: dict[str, int] = {}
    for index, item in enumerate(raw[: MAX_ITEMS + 1] if len(raw) <= MAX_ITEMS else []):
        at = f"items.{index}"
        if not isinstance(item, dict) or set(item) - {"key", "invoice"}:
            errors.append(FieldError(at, "invalid", _('Each item is an object {"key": …, "invoice": {…}}.')))
            continue
        key = item.get("key")
        try:
            key = idempotency.check_key(key if isinstance(key, str) else "")
        except InvalidValueError as error:
            errors.append(error.at(f"{at}.key"))
            continue
        if key in first_seen:
            errors.append(
                FieldError(
                    f"{at}.key",
                    "duplicate_key",
                    _("This key is also used by item {other} of this batch."),
                    {"other": first_seen[key]},
                )
            )
            continue
        first_seen[key] = index
        if "invoice" not in item:
            errors.append(FieldError(f"{at}.invoice", "required", _("This field is required.")))
            continue
        items.append((key, item["invoice"]))
    if errors:
        raise ValidationFailed(errors)
    return BatchRequest(items=items, all_or_nothing=all_or_nothing)


def issue_batch(*, user: User, payload: object, idempotency_key: str | None = None) -> BatchResult:
    """Issue every good item of a batch in one durable unit; answer once it is committed."""
    require(user, Action.ISSUE_INVOICE)
    merchant = merchant_of(user)
    batch_key = idempotency.check_key(idempotency_key) if idempotency_key is not None else None
    request = parse_batch(payload)
    fingerprint = idempotency.request_fingerprint("invoice-batches", payload)
    today = timezone.localdate()
    items = [_Item(index, key) for index, (key, _invoice) in enumerate(request.items)]
    for item, (key, invoice) in zip(items, request.items, strict=True):
        try:
            item.prepared = prepare_issue(
                user=user, merchant=merchant, payload=invoice, idempotency_key=key, on=today
            )
        except FapiaoError as error:
            item.problem = error
    if request.all_or_nothing:
        _refuse_if_any(items)

    def run(unit: UnitOfWork, *, careful: bool) -> BatchResult:
        def work() -> BatchResult:
            for item in items:
                if item.prepared is None:
                    continue
                if not careful:  # the fast pass: a failing item sends the batch to the careful one
                    try:
                        item.result = issue_in_unit(unit, item.prepared)
                    except FapiaoError:
                        raise _NeedsSavepointsError() from None
                    continue
                try:
                    with unit.savepoint():
                        item.result = issue_in_unit(unit, item.prepared)
                except FapiaoError as error:
                    item.problem = error
            if request.all_or_nothing:
                _refuse_if_any(items)  # rolls the whole unit's work for this batch back
            answer = BatchResult(status=200, body={})
            unit.before_commit.append(lambda: setattr(answer, "body", _body(items, request.all_or_nothing)))
            return answer

        return idempotency.once(
            unit,
            user=user,
            key=batch_key,
            fingerprint=fingerprint,
            run=work,
            replay=lambda status, body: BatchResult(status=status, body=body, replayed=True),
        )

    try:
        return write(lambda unit: run(unit, careful=False), deferrable=True)
    except _NeedsSavepointsError:
        for item in items:
            item.result = None
        return write(lambda unit: run(unit, careful=True), deferrable=True)


def _refuse_if_any(items: list[_Item]) -> None:
    errors: list[FieldError] = []
    for item in items:
        if item.problem is not None:
            errors.extend(_field_errors(item.problem, f"items.{item.index}"))
    if errors:
        raise ValidationFailed(errors, _("A batch sent all-or-nothing has errors; no invoice was issued."))


def _field_errors(error: FapiaoError, at: str) -> list[FieldError]:
    if isinstance(error, ValidationFailed):
        return [FieldError(f"{at}.invoice.{e.field}", e.code, e.message, e.params) for e in error.errors]
    if isinstance(error, idempotency.IdempotencyMismatchError | idempotency.IdempotencyInProgressError):
        return [FieldError(f"{at}.key", error.code, error.message, error.params)]
    return [FieldError(at, error.code, error.message, error.params)]


def _body(items: list[_Item], all_or_nothing: bool) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    for item in items:
        if item.result is not None:
            results.append(
                {
                    "key": item.key,
                    "status": item.result.status,
                    "replayed": item.result.replayed,
                    "invoice": item.result.body,
                }
            )
        else:
            problem = item.problem or FapiaoError()
            results.append({"key": item.key, "status": problem.status, "problem": problems.document(problem)})
    issued = sum(1 for item in items if item.result is not None)
    return {
        "all_or_nothing": all_or_nothing,
        "count": len(items),
        "issued": issued,
        "failed": len(items) - issued,
        "items": results,
    }
