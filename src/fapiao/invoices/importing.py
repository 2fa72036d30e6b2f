"""Import runs: commit a plan in batches, resume a killed run, revert a mistaken one.

Each batch is one unit of work (:func:`fapiao.platform.uow.write`): every accepted invoice of the
batch, its ``import`` ledger entry (origin imported, ``ref`` = the SHA-256 of its source file) and
its :class:`~fapiao.invoices.models.ImportedRecord` commit together or not at all.  A run killed
mid-way (kill -9) leaves whole batches only; ``--resume RUN`` reads the same files again, leaves
out the records the run already wrote and carries on.  The same file imported twice finds every
record a duplicate and writes no invoice.

A red-letter invoice takes from its blue original (in the same import or already stored) as an
issued red letter does: its lines are matched to the blue's (:func:`~fapiao.core.red_letter.
match_red_lines`) and the blue becomes 部分红冲 or 已全额红冲 in the same unit of work.

Revert appends a ``revert`` entry per invoice of the run and marks each invoice reverted
(已撤销导入): nothing is deleted; reverted invoices leave search results and totals, and a blue
invoice that a reverted red invoice took from gets back the state its other red invoices give it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from fapiao.accounts.models import Merchant, User
from fapiao.accounts.permissions import Action, require
from fapiao.audit.services import record
from fapiao.core.choices import (
    Colour,
    Direction,
    EntryKind,
    ImportRunState,
    InvoiceState,
    Origin,
    RecordStatus,
)
from fapiao.core.errors import ConflictError, NotFoundError, PermissionDeniedError, _
from fapiao.core.invoice import Line
from fapiao.core.red_letter import match_red_lines, state_after, take
from fapiao.formats.mapping import ColumnMapping
from fapiao.invoices.import_manifest import build_manifest, merchant_totals, sign_manifest
from fapiao.invoices.import_plan import Plan, PlannedRecord, SourceFile, plan_import
from fapiao.invoices.models import ImportedRecord, ImportRun, Invoice
from fapiao.invoices.outgoing import register_number
from fapiao.invoices.rows import SealedBuyer, core_line, document_for, line_row, seal_buyer
from fapiao.invoices.services import red_lettered_so_far
from fapiao.ledger.services import append_entry
from fapiao.platform import rows
from fapiao.platform.uow import UnitOfWork, write

BATCH = 500
BEIJING = ZoneInfo("Asia/Shanghai")


class ImportRunNotFoundError(NotFoundError):
    """No such import run for this merchant."""

    code = "import_run_not_found"


class ImportRunStateError(ConflictError):
    """This import run cannot do that in its present state."""

    code = "import_run_state"


class ImportFilesChangedError(ConflictError):
    """The files given to resume differ from those the run started with (name them all, unchanged)."""

    code = "import_files_changed"


class NotMerchantAdminError(PermissionDeniedError):
    """Only an administrator of this merchant may import its invoices."""

    code = "not_merchant_admin"


Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ImportOptions:
    merchant: Merchant
    direction: Direction
    mapping: ColumnMapping | None = None
    batch: int = BATCH


def keep_upload(*, user: User, name: str, data: bytes) -> SourceFile:
    """Keep an uploaded file by its SHA-256 until it is imported (the page's preview → import)."""
    require(user, Action.IMPORT_INVOICES)
    source = SourceFile.of(name, name, data)
    directory = Path(settings.FAPIAO_IMPORT_UPLOADS_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / source.sha256
    if not target.exists():
        partial = target.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(target)
    return SourceFile.of(name, str(target), data)


def kept_upload(*, user: User, sha256: str, name: str) -> SourceFile:
    require(user, Action.IMPORT_INVOICES)
    if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
        raise ImportRunNotFoundError()
    path = Path(settings.FAPIAO_IMPORT_UPLOADS_DIR) / sha256
    try:
        data = path.read_bytes()
    except OSError:
        raise ImportRunNotFoundError() from None
    return SourceFile.of(name, str(path), data)


def recent_runs(*, user: User) -> list[ImportRun]:
    require(user, Action.IMPORT_INVOICES)
    return list(ImportRun.objects.filter(merchant_id=user.merchant_id or -1).order_by("-pk")[:20])


def _check_actor(user: User, merchant: Merchant) -> None:
    require(user, Action.IMPORT_INVOICES)
    if user.merchant_id != merchant.pk:
        raise NotMerchantAdminError()


def dry_run(*, user: User, options: ImportOptions, sources: Sequence[SourceFile]) -> Plan:
    """The plan, without writing anything."""
    _check_actor(user, options.merchant)
    return plan_import(
        merchant=options.merchant,
        direction=options.direction,
        sources=sources,
        mapping=options.mapping,
        today=timezone.localdate(),
    )


def _file_items(plan: Plan, mapping: ColumnMapping | None) -> list[dict[str, Any]]:
    return [
        {**planned.summary(), "path": planned.source.path, "mapping": mapping.as_dict() if mapping else None}
        for planned in plan.files
    ]


def commit_import(
    *,
    user: User,
    options: ImportOptions,
    sources: Sequence[SourceFile],
    resume: str | None = None,
    progress: Progress | None = None,
    max_batches: int | None = None,
) -> ImportRun:
    """Import the accepted records of ``sources``, in batches; a new run, or ``resume`` a killed one.

    ``max_batches``: write at most that many batches and return the run still running (the page
    imports a batch per request, with a progress bar, by resuming); None: to the end.
    """
    _check_actor(user, options.merchant)
    merchant = options.merchant
    if resume:
        run = _resumable(merchant, resume, sources)
        done = frozenset(_records_of(run).values_list("file_sha256", "position"))
    else:
        run, done = None, frozenset()
    plan = plan_import(
        merchant=merchant,
        direction=options.direction,
        sources=sources,
        mapping=options.mapping,
        today=timezone.localdate(),
        done=done,
    )
    if run is None:
        run = _start_run(user, options, plan)
    _write_decided(run, plan)
    accepted = plan.accepted
    total = len(accepted)
    for number, start in enumerate(range(0, total, options.batch)):
        if max_batches is not None and number >= max_batches:
            return run
        _write_batch(run, user, accepted[start : start + options.batch])
        if progress:
            progress(min(start + options.batch, total), total)
    return _finish(run, user)


@dataclass(frozen=True)
class RunProgress:
    total: int  # records the run accepts (as planned when it started)
    imported: int

    @property
    def done(self) -> bool:
        return self.imported >= self.total

    @property
    def percent(self) -> int:
        return 100 if not self.total else self.imported * 100 // self.total


def run_progress(run: ImportRun) -> RunProgress:
    total = sum(int(item.get("accepted", 0)) for item in run.files)
    return RunProgress(total, _records_of(run).filter(status=RecordStatus.ACCEPTED).count())


def import_step(*, user: User, run_id: str) -> ImportRun:
    """The page's next batch of a running run (its files were kept at upload), or its end."""
    run = find_run(user=user, run_id=run_id)
    if run.state != ImportRunState.RUNNING:
        return run
    sources = [kept_upload(user=user, sha256=item["sha256"], name=item["name"]) for item in run.files]
    mapping = None
    saved = next((item.get("mapping") for item in run.files if item.get("mapping")), None)
    if saved:
        mapping, _problems = ColumnMapping.from_dict(saved)
    options = ImportOptions(run.merchant, Direction(run.direction), mapping)
    try:
        return commit_import(user=user, options=options, sources=sources, resume=run.run_id, max_batches=1)
    except IntegrityError:
        # Two steps at once (the page's own and a click): the other wrote this batch; this one
        # rolled back whole.  The next step carries on.
        run.refresh_from_db()
        return run


def _records_of(run: ImportRun) -> Any:
    return ImportedRecord.objects.filter(merchant_id=run.merchant_id, run=run)


def _resumable(merchant: Merchant, run_id: str, sources: Sequence[SourceFile]) -> ImportRun:
    run = ImportRun.objects.filter(merchant=merchant, run_id=run_id).first()
    if run is None:
        raise ImportRunNotFoundError()
    if run.state != ImportRunState.RUNNING:
        raise ImportRunStateError(_("Only a run that was interrupted can be resumed."))
    if sorted({item["sha256"] for item in run.files}) != sorted({source.sha256 for source in sources}):
        raise ImportFilesChangedError()
    return run


def _start_run(user: User, options: ImportOptions, plan: Plan) -> ImportRun:
    now = timezone.now()
    run = ImportRun(
        merchant=options.merchant,
        run_id=f"imp-{now:%Y%m%d}-{secrets.token_hex(4)}",
        direction=options.direction,
        mapping_name=options.mapping.name if options.mapping else "",
        state=ImportRunState.RUNNING,
        files=_file_items(plan, options.mapping),
        before=merchant_totals(options.merchant, options.direction),
        created_by=user,
        created_at=now,
    )
    run.save()
    return run


def _record_row(run: ImportRun, planned: PlannedRecord, invoice: Invoice | None = None) -> ImportedRecord:
    return ImportedRecord(
        merchant_id=run.merchant_id,
        run=run,
        file_sha256=planned.file_sha256,
        position=planned.position,
        number=planned.number[:32],
        record_sha256=planned.record_sha256,
        status=planned.status,
        reasons=planned.reasons,
        invoice=invoice,
    )


def _write_decided(run: ImportRun, plan: Plan) -> None:
    """The rejected records and duplicates, in one transaction (they write no invoice)."""
    decided = [_record_row(run, r) for r in plan.records if r.status is not RecordStatus.ACCEPTED]
    with transaction.atomic():
        ImportedRecord.objects.bulk_create(decided, batch_size=1000)


def _issued_at(on: Any) -> datetime:
    return datetime.combine(on, time(0), tzinfo=BEIJING).astimezone(UTC)


def _new_row(run: ImportRun, user: User, found: Any, buyer: SealedBuyer, original: Invoice | None) -> Invoice:
    """The row of one accepted record (what :func:`~fapiao.invoices.rows.create_invoice_row` builds)."""
    lines = found.lines
    return Invoice(
        merchant=run.merchant,
        **buyer.columns,
        number=found.number,
        kind=found.kind,
        colour=found.colour,
        direction=run.direction,
        state=InvoiceState.NORMAL,
        origin=Origin.IMPORTED,
        origin_ref=run.run_id,
        issued_on=found.issued_on,
        issued_at=_issued_at(found.issued_on),
        seller_name=found.seller_name,
        seller_tax_id=found.seller_tax_id,
        buyer_sealed=buyer.sealed,
        original=original,
        remark=found.remark,
        total_amount=sum(line.amount for line in lines),
        total_tax=sum(line.tax for line in lines),
        total_with_tax=sum(line.amount + line.tax for line in lines),
        created_by=user,
    )


def _write_batch(run: ImportRun, user: User, batch: list[PlannedRecord]) -> None:
    """One unit of work: the batch's invoices (one multi-row INSERT; a red invoice whose blue
    original is earlier in the same batch waits for it), their entries, lines and records."""
    merchant = run.merchant
    sealed = [seal_buyer(merchant, planned.input.buyer) for planned in batch if planned.input]
    originals = {
        planned.input.original_number
        for planned in batch
        if planned.input is not None and planned.input.original_number
    }

    def run_batch(unit: UnitOfWork) -> None:
        now = timezone.now()
        known = {i.number: i for i in Invoice.objects.filter(merchant=merchant, number__in=originals)}
        waiting: list[tuple[Invoice, PlannedRecord]] = []

        def flush() -> None:
            rows.insert([invoice for invoice, _planned in waiting])
            later: list[Any] = []
            for invoice, planned in waiting:
                assert planned.input is not None
                later += [line_row(invoice, line) for line in planned.input.lines]
                later.append(_record_row(run, planned, invoice))
            unit.defer(*later)
            waiting.clear()

        blues = _Blues({planned.input.number: planned.input.lines for planned in batch if planned.input})
        for planned, buyer in zip(batch, sealed, strict=True):
            found = planned.input
            assert found is not None
            if found.original_number and any(i.number == found.original_number for i, _p in waiting):
                flush()  # the blue original needs its primary key first
            original = known.get(found.original_number or "")
            if original is not None and found.colour == Colour.RED:
                found = planned.input = replace(found, lines=blues.take(original, found.lines))
            invoice = _new_row(run, user, found, buyer, original)
            if settings.FAPIAO_LEDGER_ENABLED:  # off in benchmarks only
                document = document_for(invoice, found.lines, buyer=buyer.buyer)
                entry = append_entry(
                    unit,
                    merchant=merchant,
                    kind=EntryKind.IMPORT,
                    invoice=document,
                    ref=planned.file_sha256,
                    at=now,
                )
                invoice.ledger_seq = entry.seq
            if run.direction == Direction.OUT:
                register_number(
                    unit, merchant=merchant, number=found.number, at=now, existing=False, defer=True
                )
            known[found.number] = invoice
            waiting.append((invoice, planned))
        flush()
        blues.save()

    write(run_batch)


_RED_STATES = (InvoiceState.NORMAL, InvoiceState.PARTLY_RED, InvoiceState.FULLY_RED)


class _Blues:
    """The blue originals a batch's red invoices take from: their lines, what was taken, new states."""

    def __init__(self, batch_lines: dict[str, tuple[Line, ...]]) -> None:
        self.batch_lines = batch_lines  # the lines of the batch's own invoices, by number
        self.taken: dict[str, tuple[Invoice, tuple[Line, ...], dict[int, tuple[Any, int, int]]]] = {}

    def take(self, original: Invoice, red: tuple[Line, ...]) -> tuple[Line, ...]:
        """``red`` matched to ``original``'s lines (when it is a blue invoice), counted against it."""
        if original.colour != Colour.BLUE:
            return red
        if original.number not in self.taken:
            if original.pk is None or original.number in self.batch_lines:
                lines, already = self.batch_lines[original.number], {}
            else:
                lines = tuple(core_line(line, original) for line in original.lines.all())
                already = red_lettered_so_far(original)
            self.taken[original.number] = (original, lines, already)
        _invoice, lines, already = self.taken[original.number]
        matched = match_red_lines(lines, red, already)
        self.taken[original.number] = (original, lines, take(already, matched))
        return matched

    def save(self) -> None:
        for original, lines, already in self.taken.values():
            state = state_after(lines, already)
            if original.state in _RED_STATES and original.state != state:
                Invoice.objects.filter(pk=original.pk).update(state=state, version=F("version") + 1)
                original.state = state


def _finish(run: ImportRun, user: User) -> ImportRun:
    now = timezone.now()
    run.committed_at = now
    run.state = ImportRunState.COMMITTED
    manifest = build_manifest(run, after=merchant_totals(run.merchant, run.direction))
    run.manifest = sign_manifest(manifest)
    run.counts = manifest["counts"]
    with transaction.atomic():
        run.save(update_fields=["committed_at", "state", "manifest", "counts"])
        record(
            actor=user,
            action="invoice.import",
            target_type="import_run",
            target_id=run.run_id,
            merchant=run.merchant,
            after={"run": run.run_id, **manifest["counts"]},
        )
    return run


def _restore_originals(merchant: Merchant, chunk: list[int], *, reverting: frozenset[int]) -> None:
    """The blue originals of the chunk's red invoices, not reverted themselves: the state their
    remaining red invoices give them."""
    originals = (
        Invoice.objects.filter(
            merchant=merchant,
            colour=Colour.BLUE,
            state__in=_RED_STATES,
            pk__in=Invoice.objects.filter(pk__in=chunk, original__isnull=False).values("original_id"),
        )
        .exclude(pk__in=reverting)
        .order_by("pk")
        .select_for_update()
    )
    for original in originals:
        lines = [core_line(line, original) for line in original.lines.all()]
        state = state_after(lines, red_lettered_so_far(original))
        if state != original.state:
            Invoice.objects.filter(pk=original.pk).update(state=state, version=F("version") + 1)


def find_run(*, user: User, run_id: str) -> ImportRun:
    require(user, Action.IMPORT_INVOICES)
    run = (
        ImportRun.objects.select_related("merchant")
        .filter(merchant_id=user.merchant_id or -1, run_id=run_id)
        .first()
    )
    if run is None:
        raise ImportRunNotFoundError()
    return run


def revert_import(*, user: User, run_id: str) -> ImportRun:
    """Append a ``revert`` entry per invoice of the run and mark each reverted; nothing is deleted."""
    run = find_run(user=user, run_id=run_id)
    if run.state != ImportRunState.COMMITTED:
        raise ImportRunStateError(_("Only a committed import can be reverted."))
    merchant = run.merchant
    ids = list(_records_of(run).filter(status=RecordStatus.ACCEPTED).values_list("invoice_id", flat=True))
    reverting = frozenset(ids)
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]

        def revert_batch(unit: UnitOfWork, chunk: list[int] = chunk) -> None:
            now = timezone.now()
            invoices = Invoice.objects.filter(merchant=merchant, pk__in=chunk).order_by("pk")
            for invoice in invoices.select_related("original").select_for_update(of=("self",)):
                if invoice.state == InvoiceState.REVERTED:
                    continue
                document = document_for(invoice, list(invoice.lines.all()))
                append_entry(
                    unit, merchant=merchant, kind=EntryKind.REVERT, invoice=document, ref=run.run_id, at=now
                )
            Invoice.objects.filter(merchant=merchant, pk__in=chunk).exclude(
                state=InvoiceState.REVERTED
            ).update(state=InvoiceState.REVERTED)
            _restore_originals(merchant, chunk, reverting=reverting)

        write(revert_batch)
    now = timezone.now()
    with transaction.atomic():
        ImportRun.objects.filter(pk=run.pk).update(
            state=ImportRunState.REVERTED, reverted_at=now, reverted_by=user
        )
        record(
            actor=user,
            action="invoice.import_revert",
            target_type="import_run",
            target_id=run.run_id,
            merchant=merchant,
            after={"run": run.run_id, "invoices": len(ids)},
        )
    run.refresh_from_db()
    return run
