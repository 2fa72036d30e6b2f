"""Key custody (docs/spec/ledger.md): rotating the signing key, declaring one compromised, exporting the
public keys, and rotating the data key.  ``fapiao keys`` only parses and prints; this does the work.

A compromise marks a key as untrusted from a time, rotating first when it is the current key, then
re-signs with the current key every head made at or after that time that the compromised key
signed: the head keeps its log, size, root and time and gets the new key_id; the old
``{key_id, signature}`` is kept in ``TreeHead.previous_signatures``; the re-signed heads are
appended to the witness file.  Heads whose root the stored log no longer reproduces are *not*
re-signed (that would vouch for a forgery) and are reported instead.  The audit trail's signed
heads get the same treatment (``fapiao.audit.store.resign_heads``, the audit witness).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from fapiao.accounts.models import Merchant
from fapiao.audit import store as audit_store
from fapiao.audit.services import record as audit_record
from fapiao.core import merkle
from fapiao.core.canonical import utc_stamp
from fapiao.core.errors import ConflictError, FapiaoError, InvalidValueError, NotFoundError, _
from fapiao.core.signing import KeyRegistry, SigningKey, make_head, sign_head
from fapiao.ledger.models import TreeHead
from fapiao.ledger.services import fetch_nodes, witness
from fapiao.platform import datakeys, keys

BEIJING = ZoneInfo("Asia/Shanghai")
BATCH = 500
# A compromise cannot start in the future; allow this much clock skew.
FUTURE_SKEW = timedelta(minutes=5)
MAX_DATA_BATCH = 100_000


class KeyFileConfiguredError(ConflictError):
    """The signing key comes from FAPIAO_SIGNING_KEY_FILE ({path}). To rotate, create a new Ed25519 key file (mode 0600), point FAPIAO_SIGNING_KEY_FILE at it and restart: the new key is registered on its first use and the old one retired. See the runbook."""  # noqa: E501

    code = "signing_key_configured"


class UnknownKeyError(NotFoundError):
    """Unknown key {key_id}; the keys of this installation are: {known}."""

    code = "unknown_key"


def parse_since(text: str) -> datetime:
    """An ISO 8601 time; Asia/Shanghai (Beijing time) when it carries no offset."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidValueError(
            _(
                "--since must be an ISO 8601 time such as 2026-11-27T09:00 (Beijing time unless it "
                "carries an offset such as Z or +08:00), not {value!r}."
            ),
            value=text,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=BEIJING)
    if moment > timezone.now() + FUTURE_SKEW:
        raise InvalidValueError(
            _("--since {value} is in the future; a compromise starts at a past time."),
            value=moment.isoformat(),
        )
    return moment


def beijing(stamp: str) -> str:
    """A ``YYYY-MM-DDTHH:MM:SSZ`` stamp as Beijing wall-clock time."""
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(BEIJING)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def registry() -> KeyRegistry:
    path = keys.registry_path()
    return KeyRegistry.load(path) if path.exists() else KeyRegistry()


# --- rotate ----------------------------------------------------------------------------------------


def rotate_signing_key() -> SigningKey:
    """A new signing key becomes current; earlier keys stay in the registry (retired)."""
    if settings.FAPIAO_SIGNING_KEY_FILE:
        raise KeyFileConfiguredError(path=settings.FAPIAO_SIGNING_KEY_FILE)
    key = keys.rotate()
    audit_record(actor=None, action="keys.rotate", target_type="signing_key", target_id=key.key_id)
    return key


# --- compromised -----------------------------------------------------------------------------------


@dataclass
class ResignReport:
    resigned: int = 0
    logs: set[str] = field(default_factory=set)
    skipped: list[tuple[str, int, str]] = field(default_factory=list)  # (log, size, at)


@dataclass(frozen=True)
class Compromise:
    """What declaring a key compromised did (or, in a dry run, would do)."""

    key_id: str
    since: str  # UTC stamp
    rotated: bool  # the key was the current one, so a new key was made current
    current: str  # the key that signs from now on ("" in a dry run that would rotate)
    heads: int  # heads re-signed (or, in a dry run, that would be)
    report: ResignReport | None  # None in a dry run
    audit_heads: list[tuple[str, int, str]] = field(default_factory=list)  # in a dry run: (log, size, at)
    audit: audit_store.AuditResign | None = None  # None in a dry run


def heads_signed_since(key_id: str, since: str) -> QuerySet[TreeHead]:
    return TreeHead.objects.filter(key_id=key_id, at__gte=since)


def declare_compromised(key_id: str, since: datetime, *, dry_run: bool = False) -> Compromise:
    stamp = utc_stamp(since)
    record = registry().get(key_id)
    if record is None:
        known = ", ".join(r.key_id for r in registry().records()) or "—"
        raise UnknownKeyError(key_id=key_id, known=known)
    current = keys.signing_key()
    must_rotate = current.key_id == key_id
    if must_rotate and settings.FAPIAO_SIGNING_KEY_FILE:
        raise KeyFileConfiguredError(
            _(
                "Key {key_id} is the one FAPIAO_SIGNING_KEY_FILE points at. Install a new key file, "
                "point FAPIAO_SIGNING_KEY_FILE at it, restart the servers, then run this again."
            ),
            key_id=key_id,
        )
    if dry_run:
        count = heads_signed_since(key_id, stamp).count()
        audit_heads = audit_store.heads_signed_since(key_id, stamp)
        return Compromise(
            key_id, stamp, must_rotate, "" if must_rotate else current.key_id, count, None, audit_heads
        )
    if must_rotate:
        current = rotate_signing_key()
    keys.mark_compromised(key_id, since)
    audit_record(
        actor=None,
        action="keys.compromised",
        target_type="signing_key",
        target_id=key_id,
        after={"compromised_since": stamp, "current": current.key_id},
    )
    report = resign_heads(key_id, stamp, current)
    audit = audit_store.resign_heads(key_id, stamp, current, batch=BATCH)
    return Compromise(key_id, stamp, must_rotate, current.key_id, report.resigned, report, audit=audit)


def _root_matches(head: TreeHead) -> bool:
    """Whether the stored nodes still give this head's root (O(log n) nodes, one query)."""
    try:
        nodes = fetch_nodes(head.merchant_id, merkle.root_needs(head.size))
        return merkle.root_from(head.size, nodes) == bytes(head.root)
    except FapiaoError:
        return False


def resign_heads(key_id: str, since: str, signer: SigningKey) -> ResignReport:
    """Re-sign every head at or after ``since`` signed by ``key_id``, batch by batch."""
    report = ResignReport()
    skipped_ids: list[int] = []
    while True:
        witnessed: list[dict[str, object]] = []
        with transaction.atomic():
            batch = list(
                heads_signed_since(key_id, since)
                .exclude(pk__in=skipped_ids)
                .select_for_update()
                .order_by("pk")[:BATCH]
            )
            if not batch:
                break
            names = dict(
                Merchant.objects.filter(pk__in={h.merchant_id for h in batch}).values_list("pk", "uscc")
            )
            for head in batch:
                log_name = names[head.merchant_id]
                if not _root_matches(head):
                    skipped_ids.append(head.pk)
                    report.skipped.append((log_name, head.size, head.at))
                    continue
                document = make_head(
                    log=log_name, size=head.size, root=bytes(head.root), at=head.at, key_id=signer.key_id
                )
                signature = sign_head(document, signer)
                head.previous_signatures = [
                    *(head.previous_signatures or []),
                    {"key_id": head.key_id, "signature": head.signature},
                ]
                head.key_id = signer.key_id
                head.signature = signature
                head.save(update_fields=["key_id", "signature", "previous_signatures"])
                witnessed.append({"head": document, "signature": signature})
                report.resigned += 1
                report.logs.add(log_name)
        witness(witnessed)  # after the batch committed
    return report


# --- export-public ---------------------------------------------------------------------------------


def public_registry() -> KeyRegistry:
    """Every public key ever used; a fresh installation makes its first key here, as the API does."""
    keys.signing_key()
    return KeyRegistry.load(keys.registry_path())


def export_public(path: Path) -> int:
    """Write the public-key registry to ``path``; how many keys it holds."""
    found = public_registry()
    found.save(path)
    return len(found)


# --- rotate-data -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataRotation:
    version: int
    resumed: bool  # an earlier rotation was finished (no new key added)
    waiting: int  # rows not yet under ``version`` when it started
    rows: int  # rows re-encrypted


def rotate_data(
    *, batch_size: int, resume: bool, progress: Callable[[int, int, int], None] | None = None
) -> DataRotation:
    """Add a data key (unless an earlier rotation is unfinished, or ``resume``) and re-encrypt every
    registered table's sensitive fields with it, ``batch_size`` rows per transaction."""
    if not 1 <= batch_size <= MAX_DATA_BATCH:
        raise InvalidValueError(_("--batch-size must be between 1 and 100000."))
    rotations = list(datakeys.ROTATIONS.values())
    current = datakeys.keyring().current
    waiting = sum(rotation.remaining(current) for rotation in rotations)
    resumed = bool(waiting) or resume
    if not resumed:
        current = datakeys.add_version()
    rows = 0
    for rotation in rotations:

        def report(done: int, remaining: int, version: int = current) -> None:
            if progress is not None:
                progress(done, remaining, version)

        rows += rotation.rotate(batch_size, report)
    audit_record(
        actor=None,
        action="keys.rotate_data",
        target_type="data_key",
        target_id=str(current),
        after={"version": current, "rows": rows, "resumed": resumed},
    )
    return DataRotation(version=current, resumed=resumed, waiting=waiting, rows=rows)
