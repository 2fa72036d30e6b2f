"""Named status values, in one place.  Models take their choices from these Enums."""

from __future__ import annotations

from enum import StrEnum


class InvoiceKind(StrEnum):
    ORDINARY = "ordinary"  # 普通发票
    SPECIAL = "special"  # 增值税专用发票


class Colour(StrEnum):
    BLUE = "blue"  # 蓝字发票
    RED = "red"  # 红字发票


class Direction(StrEnum):
    OUT = "out"  # 销项: issued by the merchant
    IN = "in"  # 进项: received by the merchant (record mode)


class InvoiceState(StrEnum):
    """The legal state of an invoice."""

    NORMAL = "normal"  # 正常
    PARTLY_RED = "partly_red"  # 部分红冲
    FULLY_RED = "fully_red"  # 全额红冲
    VOIDED = "voided"  # 作废 (imported paper invoices only)
    REVERTED = "reverted"  # 已撤销导入: a mistaken import reversed (``fapiao import revert``); kept


class Origin(StrEnum):
    """Where an invoice row came from (provenance), separate from its state."""

    ISSUED = "issued"
    IMPORTED = "imported"
    RESTORED = "restored"
    REISSUED = "reissued"


class EntryKind(StrEnum):
    """The kind of a ledger entry (docs/spec/ledger.md)."""

    ISSUE = "issue"
    RED_LETTER = "red_letter"
    VOID = "void"
    IMPORT = "import"
    RESTORE = "restore"
    REISSUE = "reissue"
    REVERT = "revert"  # an import reversed: the invoice leaves search and totals, its entries stay


class ImportRunState(StrEnum):
    """An import run (导入批次): planned (dry run) → running → committed → reverted."""

    PLANNED = "planned"  # 已预检
    RUNNING = "running"  # 导入中 (a killed run stays here until --resume)
    COMMITTED = "committed"  # 已导入
    REVERTED = "reverted"  # 已撤销


class RecordStatus(StrEnum):
    """What an import did with one record of a file."""

    ACCEPTED = "accepted"  # 已导入
    REJECTED = "rejected"  # 被拒绝 (with its reasons)
    DUPLICATE = "duplicate"  # 重复 (the same invoice is already in the merchant's records)


class TokenScope(StrEnum):
    READ = "read"
    WRITE = "write"


class IncidentKind(StrEnum):
    """What kind of integrity incident (数据完整性事件) was opened."""

    RECEIPT_NOT_PROVEN = "receipt_not_proven"  # a validly signed receipt the log no longer proves
    VERIFY_FAILED = "verify_failed"  # `ledger verify` found a log (or the witness) wrong
    RESTORE_LOST_ENTRIES = "restore_lost_entries"  # a restored log is shorter than its witness saw
    MIGRATION_CHANGED_DATA = "migration_changed_data"  # `fapiao migrate` changed a merchant's records


class IncidentState(StrEnum):
    """An integrity incident's lifecycle: open → acknowledged → resolved (with a note)."""

    OPEN = "open"  # 待处理
    ACKNOWLEDGED = "acknowledged"  # 已确认，处理中
    RESOLVED = "resolved"  # 已解决
