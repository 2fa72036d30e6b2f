"""``fapiao keys list | rotate | compromised KEY_ID --since TIME | export-public FILE | rotate-data``.

Key custody (docs/spec/ledger.md): private keys live in ``FAPIAO_KEYS_DIR`` (``<key_id>.pem``, 0600)
or in ``FAPIAO_SIGNING_KEY_FILE``, never in the database; ``keys.json`` beside them is the
public registry of every key ever used, with its status (active / retired / compromised).

``compromised`` marks a key as compromised from a time and re-signs the heads it signed since
(:mod:`fapiao.ledger.key_custody`, which does the work; this command parses and prints).

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
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext, gettext_noop

from fapiao.audit.store import witness_path as audit_witness_path
from fapiao.core.errors import FapiaoError
from fapiao.core.signing import SigningKey, read_private_key
from fapiao.ledger import key_custody
from fapiao.ledger.key_custody import beijing
from fapiao.platform import datakeys, keys

STATUS_LABELS = {
    "active": gettext_noop("active"),
    "retired": gettext_noop("retired"),
    "compromised": gettext_noop("compromised"),
}


def _pad(text: str, width: int) -> str:
    """Left-align ``text`` in ``width`` terminal columns (Chinese characters take two)."""
    columns = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(1, width - columns)


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
                self._said_rotated(key_custody.rotate_signing_key())
            elif action == "compromised":
                since = key_custody.parse_since(options["since"])
                self._compromised(options["key_id"], since, dry_run=options["dry_run"])
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
        registry = key_custody.registry()
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

    def _said_rotated(self, key: SigningKey) -> None:
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

    # --- compromised -------------------------------------------------------------------------

    def _compromised(self, key_id: str, since: Any, *, dry_run: bool) -> None:
        done = key_custody.declare_compromised(key_id, since, dry_run=dry_run)
        stamp = done.since
        if done.report is None:
            self.stdout.write(
                gettext(
                    "Dry run: key {key_id} would be marked compromised since {since} (Beijing {beijing}); "
                    "{rotate}{count} heads would be re-signed."
                ).format(
                    key_id=key_id,
                    since=stamp,
                    beijing=beijing(stamp),
                    rotate=gettext("a new key would be made current; ") if done.rotated else "",
                    count=done.heads,
                )
            )
            self.stdout.write(
                gettext("Dry run: {count} signed audit heads would be re-signed.").format(
                    count=len(done.audit_heads)
                )
            )
            for log_name, size, at in done.audit_heads:
                self.stdout.write(
                    "  "
                    + gettext("audit log {log}: head of size {size} at {at}").format(
                        log=log_name, size=size, at=at
                    )
                )
            return
        if done.rotated:
            self._said_rotated(keys.signing_key())
        self.stdout.write(
            gettext("Key {key_id} is marked compromised since {since} (Beijing {beijing}).").format(
                key_id=key_id, since=stamp, beijing=beijing(stamp)
            )
        )
        self.stdout.write(
            gettext(
                "Re-signed {count} heads in {logs} logs with key {current}; witnessed in {witness}."
            ).format(
                count=done.report.resigned,
                logs=len(done.report.logs),
                current=done.current,
                witness=settings.FAPIAO_WITNESS_FILE,
            )
        )
        audit = done.audit
        if audit is not None:
            self.stdout.write(
                gettext(
                    "Re-signed {count} signed audit heads in {logs} audit logs; witnessed in {witness}."
                ).format(count=audit.resigned, logs=len(audit.logs), witness=audit_witness_path())
            )
        skipped = [*done.report.skipped, *(audit.skipped if audit is not None else [])]
        for log_name, size, at in skipped:
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
            ).format(since=beijing(stamp))
        )
        if skipped:
            raise SystemExit(1)

    # --- export-public -----------------------------------------------------------------------

    def _export(self, target: str) -> None:
        if target == "-":
            registry = key_custody.public_registry()
            self.stdout.write(json.dumps(registry.to_json(), ensure_ascii=False, indent=2))
            return
        path = Path(target)
        try:
            count = key_custody.export_public(path)
        except OSError as error:
            raise CommandError(
                gettext("Cannot write {path}: {reason}.").format(path=path, reason=error.strerror)
            ) from None
        self.stdout.write(
            gettext(
                "Wrote {count} public keys to {path}. Anyone can now check a receipt offline with: "
                "fapiao receipt verify receipt.json --public-key {path}"
            ).format(count=count, path=path)
        )

    # --- rotate-data -------------------------------------------------------------------------

    def _rotate_data(self, *, batch_size: int, resume: bool) -> None:
        def progress(done: int, remaining: int, version: int) -> None:
            self.stderr.write(
                gettext("re-encrypted {done} rows, {remaining} to go (version {version})").format(
                    done=done, remaining=remaining, version=version
                )
            )

        done = key_custody.rotate_data(batch_size=batch_size, resume=resume, progress=progress)
        if done.waiting:
            self.stdout.write(
                gettext("Resuming: {count} rows are not yet under data key version {version}.").format(
                    count=done.waiting, version=done.version
                )
            )
        elif done.resumed:
            self.stdout.write(
                gettext("Nothing to resume: every row is under data key version {version}.").format(
                    version=done.version
                )
            )
        else:
            self.stdout.write(
                gettext("Data key version {version} is current; re-encrypting with it.").format(
                    version=done.version
                )
            )
        self.stdout.write(
            gettext("Done: {count} rows re-encrypted; every row is under data key version {version}.").format(
                count=done.rows, version=done.version
            )
        )
        if not datakeys.from_environment():
            self.stdout.write(
                gettext(
                    "Back up {path} now, apart from the database backups; keep every old version in it "
                    "(runbook: Data keys: backup and rotation)."
                ).format(path=datakeys.key_file())
            )
