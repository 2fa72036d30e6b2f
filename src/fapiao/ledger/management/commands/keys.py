"""``fapiao keys list | rotate | compromised KEY_ID --since TIME | export-public FILE | rotate-data``.

Key custody (DESIGN.md §6): private keys live in ``FAPIAO_KEYS_DIR`` (``<key_id>.pem``, 0600)
or in ``FAPIAO_SIGNING_KEY_FILE``, never in the database; ``keys.json`` beside them is the
public registry of every key ever used, with its status (active / retired / compromised).

``compromised`` marks a key as compromised from a time, rotating first when it is the current
key, then re-signs with the current key every head made at or after that time that the
compromised key signed: the head keeps its log, size, root and time and gets the new key_id;
the old ``{key_id, signature}`` is kept in ``TreeHead.previous_signatures``; the re-signed
heads are appended to the witness file.  Heads whose root the stored log no longer
reproduces are *not* re-signed (that would vouch for a forgery) and are listed instead.

``rotate-data`` adds a new data key (``fapiao.platform.datakeys``) and re-encrypts every invoice's
sensitive buyer fields with it, ``--batch-size`` rows per transaction; an interrupted run is
finished by running it again (it resumes instead of adding yet another key).  Rotations and
compromise declarations are recorded in the audit trail.
"""

from __future__ import annotations

import json
import os
import stat
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from fapiao.accounts.models import Merchant
from fapiao.audit.services import record as audit_record
from fapiao.core import merkle
from fapiao.core.canonical import utc_stamp
from fapiao.core.errors import FapiaoError
from fapiao.core.signing import KeyRegistry, SigningKey, make_head, read_private_key, sign_head
from fapiao.ledger.models import TreeHead
from fapiao.ledger.services import fetch_nodes, witness
from fapiao.platform import datakeys, keys

BEIJING = ZoneInfo("Asia/Shanghai")
STATUS_LABELS = {
    "active": gettext_noop("active"),
    "retired": gettext_noop("retired"),
    "compromised": gettext_noop("compromised"),
}
BATCH = 500
# A compromise cannot start in the future; allow this much clock skew.
FUTURE_SKEW = timedelta(minutes=5)


def parse_since(text: str) -> datetime:
    """An ISO 8601 time; Asia/Shanghai (Beijing time) when it carries no offset."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CommandError(
            gettext(
                "--since must be an ISO 8601 time such as 2026-11-27T09:00 (Beijing time unless it "
                "carries an offset such as Z or +08:00), not {value!r}."
            ).format(value=text)
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=BEIJING)
    if moment > timezone.now() + FUTURE_SKEW:
        raise CommandError(
            gettext("--since {value} is in the future; a compromise starts at a past time.").format(
                value=moment.isoformat()
            )
        )
    return moment


def _pad(text: str, width: int) -> str:
    """Left-align ``text`` in ``width`` terminal columns (Chinese characters take two)."""
    columns = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(1, width - columns)


@dataclass
class ResignReport:
    resigned: int = 0
    logs: set[str] = field(default_factory=set)
    skipped: list[tuple[str, int, str]] = field(default_factory=list)  # (log, size, at)


def _root_matches(head: TreeHead) -> bool:
    """Whether the stored nodes still give this head's root (O(log n) nodes, one query)."""
    try:
        nodes = fetch_nodes(head.merchant_id, merkle.root_needs(head.size))
        return merkle.root_from(head.size, nodes) == bytes(head.root)
    except FapiaoError:
        return False


def heads_signed_since(key_id: str, since: str) -> Any:
    return TreeHead.objects.filter(key_id=key_id, at__gte=since)


def resign_heads(key_id: str, since: str, signer: SigningKey) -> ResignReport:
    """Re-sign every head at or after ``since`` signed by ``key_id``, batch by batch."""
    report = ResignReport()
    skipped_ids: list[int] = []
    while True:
        witnessed: list[dict[str, Any]] = []
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


def _beijing(stamp: str) -> str:
    return (
        datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    )


class Command(BaseCommand):
    help = (
        "Ledger signing keys: list them, rotate to a new key, declare one compromised from a time "
        "(heads re-signed), export the public keys."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="every key with its status and where its private key is")
        listing.add_argument("--json", action="store_true", help="print the registry as JSON")
        sub.add_parser("rotate", help="add a new signing key and make it current; old public keys stay")
        compromised = sub.add_parser(
            "compromised",
            help="mark a key compromised from a time and re-sign later heads with the current key",
        )
        compromised.add_argument("key_id", help="the compromised key's id (see `fapiao keys list`)")
        compromised.add_argument(
            "--since",
            required=True,
            help="ISO 8601 time from which the key is not trusted; Beijing time unless an offset is given",
        )
        compromised.add_argument(
            "--dry-run", action="store_true", help="only say what would be marked and re-signed"
        )
        export = sub.add_parser("export-public", help="write the public-key registry JSON (for --public-key)")
        export.add_argument("file", help="where to write it; - for standard output")
        data = sub.add_parser(
            "rotate-data",
            help="add a new data key and re-encrypt sensitive party data with it, in resumable batches",
        )
        data.add_argument("--batch-size", type=int, default=500, help="rows re-encrypted per transaction")
        data.add_argument(
            "--resume", action="store_true", help="only finish an earlier rotation; never add a key"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "list":
                self._list(as_json=options["json"])
            elif action == "rotate":
                self._rotate()
            elif action == "compromised":
                self._compromised(options["key_id"], options["since"], dry_run=options["dry_run"])
            elif action == "rotate-data":
                self._rotate_data(batch_size=options["batch_size"], resume=options["resume"])
            else:
                self._export(options["file"])
        except FapiaoError as error:
            raise CommandError(error.render(gettext)) from None

    # --- list --------------------------------------------------------------------------------

    def _configured_key_id(self) -> str | None:
        configured = settings.FAPIAO_SIGNING_KEY_FILE
        if not configured:
            return None
        try:
            return read_private_key(configured).key_id
        except FapiaoError as error:
            self.stderr.write(error.render(gettext))
            return None

    def _private_location(self, key_id: str, configured_id: str | None) -> str:
        if key_id == configured_id:
            return f"FAPIAO_SIGNING_KEY_FILE={settings.FAPIAO_SIGNING_KEY_FILE}"
        path = keys.keys_dir() / f"{key_id}.pem"
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except FileNotFoundError:
            return gettext("not on this machine")
        return f"{path} ({mode:04o})"

    def _list(self, *, as_json: bool) -> None:
        path = keys.registry_path()
        registry = KeyRegistry.load(path) if path.exists() else KeyRegistry()
        configured_id = self._configured_key_id()
        active = registry.active()
        current = configured_id or (active[-1].key_id if active else None)
        if as_json:
            document = registry.to_json()
            document["current"] = current
            self.stdout.write(json.dumps(document, ensure_ascii=False, indent=2))
            return
        if not len(registry):
            self.stdout.write(
                gettext("No signing key yet in {path}; one is generated on the first signed write.").format(
                    path=path
                )
            )
            return
        header = (
            gettext("KEY ID"),
            gettext("STATUS"),
            gettext("CREATED (UTC)"),
            gettext("COMPROMISED SINCE (UTC)"),
            gettext("PRIVATE KEY"),
        )
        widths = (18, 22, 22, 26)
        self.stdout.write("".join(_pad(h, w) for h, w in zip(header, widths, strict=False)) + header[4])
        for record in registry.records():
            status = gettext(STATUS_LABELS.get(record.status, record.status))
            if record.key_id == current:
                status = gettext("{status} (current)").format(status=status)
            cells = (record.key_id, status, record.created_at or "—", record.compromised_since or "—")
            self.stdout.write(
                "".join(_pad(c, w) for c, w in zip(cells, widths, strict=True))
                + self._private_location(record.key_id, configured_id)
            )

    # --- rotate ------------------------------------------------------------------------------

    def _refuse_when_configured(self) -> None:
        if settings.FAPIAO_SIGNING_KEY_FILE:
            raise CommandError(
                gettext(
                    "The signing key comes from FAPIAO_SIGNING_KEY_FILE ({path}). To rotate, create a new "
                    "Ed25519 key file (mode 0600), point FAPIAO_SIGNING_KEY_FILE at it and restart: the new "
                    "key is registered on its first use and the old one retired. See the runbook."
                ).format(path=settings.FAPIAO_SIGNING_KEY_FILE)
            )

    def _rotate(self) -> SigningKey:
        self._refuse_when_configured()
        key = keys.rotate()
        audit_record(actor=None, action="keys.rotate", target_type="signing_key", target_id=key.key_id)
        self.stdout.write(
            gettext(
                "New signing key {key_id} is current; earlier keys stay in {registry} (retired) so old "
                "receipts still verify."
            ).format(key_id=key.key_id, registry=keys.registry_path())
        )
        self.stdout.write(
            gettext(
                "Back up {path} now, apart from the database backups (runbook: Signing keys: backup)."
            ).format(path=keys.keys_dir() / f"{key.key_id}.pem")
        )
        return key

    # --- compromised -------------------------------------------------------------------------

    def _compromised(self, key_id: str, since_text: str, *, dry_run: bool) -> None:
        since = parse_since(since_text)
        stamp = utc_stamp(since)
        path = keys.registry_path()
        registry = KeyRegistry.load(path) if path.exists() else KeyRegistry()
        record = registry.get(key_id)
        if record is None:
            known = ", ".join(r.key_id for r in registry.records()) or "—"
            raise CommandError(
                gettext("Unknown key {key_id}; the keys of this installation are: {known}.").format(
                    key_id=key_id, known=known
                )
            )
        current = keys.signing_key()
        must_rotate = current.key_id == key_id
        if must_rotate and settings.FAPIAO_SIGNING_KEY_FILE:
            raise CommandError(
                gettext(
                    "Key {key_id} is the one FAPIAO_SIGNING_KEY_FILE points at. Install a new key file, "
                    "point FAPIAO_SIGNING_KEY_FILE at it, restart the servers, then run this again."
                ).format(key_id=key_id)
            )
        if dry_run:
            count = heads_signed_since(key_id, stamp).count()
            self.stdout.write(
                gettext(
                    "Dry run: key {key_id} would be marked compromised since {since} (Beijing {beijing}); "
                    "{rotate}{count} heads would be re-signed."
                ).format(
                    key_id=key_id,
                    since=stamp,
                    beijing=_beijing(stamp),
                    rotate=gettext("a new key would be made current; ") if must_rotate else "",
                    count=count,
                )
            )
            return
        if must_rotate:
            current = self._rotate()
        keys.mark_compromised(key_id, since)
        audit_record(
            actor=None,
            action="keys.compromised",
            target_type="signing_key",
            target_id=key_id,
            after={"compromised_since": stamp, "current": current.key_id},
        )
        self.stdout.write(
            gettext("Key {key_id} is marked compromised since {since} (Beijing {beijing}).").format(
                key_id=key_id, since=stamp, beijing=_beijing(stamp)
            )
        )
        report = resign_heads(key_id, stamp, current)
        self.stdout.write(
            gettext(
                "Re-signed {count} heads in {logs} logs with key {current}; witnessed in {witness}."
            ).format(
                count=report.resigned,
                logs=len(report.logs),
                current=current.key_id,
                witness=settings.FAPIAO_WITNESS_FILE,
            )
        )
        for log_name, size, at in report.skipped:
            self.stderr.write(
                gettext(
                    "NOT re-signed: log {log} head of size {size} at {at}: the stored log does not give its "
                    "root. Treat it as forged; run the ledger verification and open an incident."
                ).format(log=log_name, size=size, at=at)
            )
        self.stdout.write(
            gettext(
                "Next: publish the public keys again (fapiao keys export-public FILE) and tell merchants "
                "to fetch fresh receipts for invoices acknowledged since {since}."
            ).format(since=_beijing(stamp))
        )
        if report.skipped:
            raise SystemExit(1)

    # --- export-public -----------------------------------------------------------------------

    def _export(self, target: str) -> None:
        keys.signing_key()  # a fresh installation makes its first key here, as the API does
        registry = KeyRegistry.load(keys.registry_path())
        if target == "-":
            self.stdout.write(json.dumps(registry.to_json(), ensure_ascii=False, indent=2))
            return
        path = Path(target)
        try:
            registry.save(path)
        except OSError as error:
            raise CommandError(
                gettext("Cannot write {path}: {reason}.").format(path=path, reason=error.strerror)
            ) from None
        self.stdout.write(
            gettext(
                "Wrote {count} public keys to {path}. Anyone can now check a receipt offline with: "
                "fapiao receipt verify receipt.json --public-key {path}"
            ).format(count=len(registry), path=path)
        )

    # --- rotate-data -------------------------------------------------------------------------

    def _rotate_data(self, *, batch_size: int, resume: bool) -> None:

        if not 1 <= batch_size <= 100_000:
            raise CommandError(gettext("--batch-size must be between 1 and 100000."))
        rotations = list(datakeys.ROTATIONS.values())
        current = datakeys.keyring().current
        left = sum(rotation.remaining(current) for rotation in rotations)
        resumed = bool(left) or resume
        if left:
            self.stdout.write(
                gettext("Resuming: {count} rows are not yet under data key version {version}.").format(
                    count=left, version=current
                )
            )
        elif resume:
            self.stdout.write(
                gettext("Nothing to resume: every row is under data key version {version}.").format(
                    version=current
                )
            )
        else:
            current = datakeys.add_version()
            self.stdout.write(
                gettext("Data key version {version} is current; re-encrypting with it.").format(
                    version=current
                )
            )
        rotated = 0
        for rotation in rotations:

            def progress(done: int, remaining: int, version: int = current) -> None:
                self.stderr.write(
                    gettext("re-encrypted {done} rows, {remaining} to go (version {version})").format(
                        done=done, remaining=remaining, version=version
                    )
                )

            rotated += rotation.rotate(batch_size, progress)
        audit_record(
            actor=None,
            action="keys.rotate_data",
            target_type="data_key",
            target_id=str(current),
            after={"version": current, "rows": rotated, "resumed": resumed},
        )
        self.stdout.write(
            gettext("Done: {count} rows re-encrypted; every row is under data key version {version}.").format(
                count=rotated, version=current
            )
        )
        if not datakeys.from_environment():
            self.stdout.write(
                gettext(
                    "Back up {path} now, apart from the database backups; keep every old version in it "
                    "(runbook: Data keys: backup and rotation)."
                ).format(path=datakeys.key_file())
            )
