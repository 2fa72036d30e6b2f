"""Where every table goes on Citus (docs/operations/scaling.md): the one declaration.

By merchant (docs/operations/scaling.md): the tables that change on every invoice belong
to one merchant and are **distributed** by its id, co-located so that everything one write touches
lives on one worker; the small, rarely written tables every merchant shares are **reference**
tables (a copy on every worker); Django's and django-axes' bookkeeping stays **local** to the
coordinator (Citus local tables).  Model labels only: this module imports no model, so the
platform knows no domain app.

tests/integration/test_distribution.py checks the schema against this declaration (every table is
declared; every unique key of a distributed table includes its distribution column; no reference
or local table points at a distributed one) and that a ledger write touches one merchant's rows
only.  :data:`KNOWN_GAPS` lists, with reasons, what today's schema still lacks for Citus; the test
keeps the list exact, so it can only shrink.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

Kind = Literal["distributed", "reference", "local"]


class Target(NamedTuple):
    kind: Kind
    column: str = ""  # the distribution column of a distributed table


def distributed(column: str = "merchant_id") -> Target:
    return Target("distributed", column)


REFERENCE = Target("reference")
LOCAL = Target("local")

# Model label (``app_label.ModelName``; auto-created many-to-many tables too) -> target.
TABLES: dict[str, Target] = {
    # One merchant's data, written on every invoice or case: distributed by merchant_id.
    "accounts.NumberSegment": distributed(),  # next_serial moves on every invoice
    "invoices.Invoice": distributed(),
    "invoices.InvoiceLine": distributed(),
    "invoices.InvoiceFinding": distributed(),
    "invoices.ImportRun": distributed(),
    "invoices.ImportedRecord": distributed(),
    "ledger.Log": distributed(),
    "ledger.LogEntry": distributed(),
    "ledger.LogNode": distributed(),
    "ledger.TreeHead": distributed(),
    "catalogue.Buyer": distributed(),
    "catalogue.Product": distributed(),
    "catalogue.Batch": distributed(),
    "catalogue.BatchRow": distributed(),
    "recovery.Case": distributed(),
    "recovery.Evidence": distributed(),
    "recovery.CaseMessage": distributed(),
    "recovery.CaseEvent": distributed(),
    "recovery.SupersededNumber": distributed(),
    "recovery.ReplayedInvoice": distributed(),
    "documents.Document": distributed(),
    "documents.Delivery": distributed(),
    # The audit trail: one log per merchant whose id is the merchant's id (the staff log's is 0),
    # distributed by log_id and co-located with the merchant's tables.  The log row itself moves
    # with every record (its size), so it is distributed too, by its id.
    "audit.AuditLog": distributed("id"),
    "audit.AuditRecord": distributed("log_id"),
    "audit.AuditNode": distributed("log_id"),
    "audit.AuditHead": distributed("log_id"),
    # Shared, small, rarely written: a copy on every worker.
    "accounts.Merchant": REFERENCE,
    "accounts.User": REFERENCE,
    "accounts.User_groups": REFERENCE,
    "accounts.User_user_permissions": REFERENCE,
    "accounts.ApiToken": REFERENCE,
    "accounts.Invitation": REFERENCE,
    # One outgoing number belongs to one merchant across all merchants: keyed by the number.
    "invoices.OutgoingNumber": REFERENCE,
    "ops.BackupVerification": REFERENCE,  # a backup covers every merchant
    "ledger.IntegrityIncident": REFERENCE,
    "ledger.VerifyRun": REFERENCE,  # a run covers every merchant's log
    "audit.AuditVerifyRun": REFERENCE,  # likewise for the audit logs
    "recovery.AcceptanceCounter": REFERENCE,  # the 受理编号 counter: one sequence for all merchants
    "recovery.Notification": REFERENCE,  # per user; staff notifications span merchants
    # Written on every API write with an Idempotency-Key: on Citus that makes the write a distributed
    # transaction.  To distribute it by merchant, staff keys (merchant NULL) need a table of their own.
    "platform.IdempotencyRecord": REFERENCE,
    "auth.Group": REFERENCE,
    "auth.Group_permissions": REFERENCE,
    "auth.Permission": REFERENCE,
    "contenttypes.ContentType": REFERENCE,
    # The framework's own bookkeeping, never joined with merchants' data: on the coordinator.
    "sessions.Session": LOCAL,
    "admin.LogEntry": LOCAL,
    "axes.AccessAttempt": LOCAL,
    "axes.AccessLog": LOCAL,
    "axes.AccessFailureLog": LOCAL,
    "axes.AccessAttemptExpiration": LOCAL,
    "platform.RateCounter": LOCAL,  # per client address or token, across merchants
    "platform.HourlyCount": LOCAL,  # answers per hour across merchants (the operators' overview)
}

# What the schema of today still lacks for Citus, each with the change that would close it
# (docs/operations/scaling.md, "Before moving to Citus").  Keys: (model label, what).
KNOWN_GAPS: dict[tuple[str, str], str] = {
    ("recovery.Notification", "fk:case"): (
        "a reference table may not point at a distributed one: distribute notifications by merchant "
        "(staff notifications, merchant NULL today, need their merchant or a table of their own)"
    ),
    ("audit.AuditLog", "unique:name"): (
        "the log's name (audit:<USCC>) is unique over all logs; Citus enforces uniqueness only within "
        "a shard: make it unique together with id, or drop it (the USCC is unique in accounts.Merchant)"
    ),
}


# Reference tables a ledger write does write, each with why and what it costs on Citus.  Writing a
# reference table makes the transaction touch every worker (Citus commits it with two-phase
# commit); the test checks that issuing and red-lettering write these and no other.
LEDGER_REFERENCE_WRITES: dict[str, str] = {
    "invoices.OutgoingNumber": (
        "every outgoing invoice registers its number, unique across all merchants, in its own "
        "transaction: the uniqueness that keeps one number from two merchants needs one place for "
        "every number.  On Citus each issue is then a distributed transaction over the merchant's "
        "worker and the reference table's copies; distributing this table by number instead would "
        "narrow it to two shards (docs/operations/scaling.md)"
    ),
}


def target(label: str) -> Target | None:
    return TABLES.get(label)
