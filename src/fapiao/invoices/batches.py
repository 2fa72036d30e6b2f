"""Batch issuing: check every row of a spreadsheet first, then issue the good rows a few at a time.

Each row is one invoice issued through :func:`fapiao.invoices.services.issue_invoice` with its
own ``Idempotency-Key`` (``batch-<batch id>-<row>``), so issuing the same step twice — a
double click, a reload, two tabs — never issues a row twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from fapiao.accounts.models import User
from fapiao.audit import services as audit
from fapiao.catalogue.models import Batch, BatchRow, BatchState, RowStatus
from fapiao.catalogue.selectors import batch_get, batch_rows
from fapiao.catalogue.sensitive import opened_payload, sealed_payload
from fapiao.catalogue.services import merchant_of
from fapiao.core.errors import FapiaoError, FieldError, ValidationFailed, _
from fapiao.formats.batch import read_batch
from fapiao.invoices.services import issue_invoice
from fapiao.platform.uploads import zip_limits

STEP_SIZE = 5  # rows issued per request: the progress page asks for the next step


@dataclass(frozen=True)
class Progress:
    total: int
    issued: int
    failed: int
    remaining: int

    @property
    def done(self) -> bool:
        return self.remaining == 0

    @property
    def percent(self) -> int:
        return 100 if not self.total else (self.issued + self.failed) * 100 // self.total


def create_batch(*, user: User, filename: str, data: bytes) -> Batch:
    """Check an uploaded file and keep its rows for preview; nothing is issued yet.

    A file that cannot be used at all (wrong type, no header, no rows) raises
    :class:`ValidationFailed` at field ``file``; bad rows are kept with their reasons.
    """
    merchant = merchant_of(user)
    records, problems = read_batch(data, filename, on=timezone.localdate(), zip_limits=zip_limits())
    file_problems = [p for p in problems if p.row <= 1] if not records else []
    if not records and (file_problems or not problems):
        raise ValidationFailed(
            [FieldError("file", "bad_file", p.message, p.params) for p in file_problems]
            or [FieldError("file", "bad_file", _("The file has a header but no rows to issue."))]
        )
    by_row: dict[int, list[dict[str, object]]] = {}
    for problem in problems:
        by_row.setdefault(problem.row, []).append(
            {"field": problem.field, "message": problem.message, "params": problem.params}
        )
    with transaction.atomic():
        batch = Batch.objects.create(
            merchant=merchant,
            created_by=user,
            filename=filename[-200:],
            file_sha256=hashlib.sha256(data).hexdigest(),
        )
        rows = [
            BatchRow(
                merchant=merchant,
                batch=batch,
                row_no=record.row,
                status=RowStatus.READY,
                buyer_name=record.buyer_name,
                total_with_tax=record.total_with_tax,
                **sealed_payload(
                    merchant_id=merchant.pk, batch_id=batch.pk, row_no=record.row, payload=record.payload
                ),
            )
            for record in records
        ]
        rows += [
            BatchRow(merchant=merchant, batch=batch, row_no=row, status=RowStatus.BAD, problems=items)
            for row, items in by_row.items()
        ]
        BatchRow.objects.bulk_create(sorted(rows, key=lambda r: r.row_no))
        audit.record(
            actor=user,
            action="catalogue.batch.upload",
            target=batch,
            merchant=merchant,
            after={"filename": batch.filename, "sha256": batch.file_sha256, "rows": len(rows)},
        )
    return batch


def progress(batch: Batch) -> Progress:
    counts = {status: 0 for status in RowStatus}
    for status in batch_rows(batch).values_list("status", flat=True):
        counts[RowStatus(status)] += 1
    total = counts[RowStatus.READY] + counts[RowStatus.ISSUED] + counts[RowStatus.FAILED]
    return Progress(total, counts[RowStatus.ISSUED], counts[RowStatus.FAILED], counts[RowStatus.READY])


def issue_step(*, user: User, public_id: str, limit: int = STEP_SIZE) -> tuple[Batch, Progress]:
    """Issue up to ``limit`` more good rows of the batch; safe to repeat."""
    merchant_of(user)
    batch = batch_get(user=user, public_id=public_id)
    if batch.state == BatchState.PREVIEW:
        Batch.objects.filter(pk=batch.pk, state=BatchState.PREVIEW).update(state=BatchState.ISSUING)
    for row in list(batch_rows(batch).filter(status=RowStatus.READY)[:limit]):
        try:
            result = issue_invoice(
                user=user,
                payload=opened_payload(row),
                idempotency_key=f"batch-{batch.public_id}-{row.row_no}",
            )
        except FapiaoError as error:
            failed = error.errors if isinstance(error, ValidationFailed) else []
            row.problems = [{"field": e.field, "message": e.message, "params": e.params} for e in failed] or [
                {"field": "", "message": error.message, "params": error.params}
            ]
            row.status = RowStatus.FAILED
        else:
            row.status = RowStatus.ISSUED
            row.invoice_number = str(result.body.get("number", ""))
        row.payload_enc, row.data_key_version = None, None  # the body is in the invoice now, or gone
        row.save(update_fields=["status", "payload_enc", "data_key_version", "problems", "invoice_number"])
    now = progress(batch)
    if now.done and batch.state != BatchState.DONE:
        Batch.objects.filter(pk=batch.pk).update(state=BatchState.DONE)
        batch.state = BatchState.DONE
    return batch, now
