"""``fapiao backup create | verify ID | list | prune | restore ID`` (docs/operations/backup.md).

This command parses and prints; :mod:`fapiao.ops.backup` does the work.  Exit status: 0 when the
action succeeded (a verification found nothing wrong), 1 when a verification or restore found
problems, 2 (Django's CommandError) for a refusal such as a wrong key or a running server.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.translation import gettext

from fapiao.core.backup import parse_age
from fapiao.core.errors import FapiaoError
from fapiao.ops.backup import pgbackrest, restore, retention, service, verification


class Command(BaseCommand):
    help = "Backups proven by restoring them: create, verify, list, prune, restore."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser(
            "create", help="take a consistent, encrypted, signed backup while writes continue"
        )
        create.add_argument(
            "--type",
            dest="kind",
            choices=("full", "diff", "incr"),
            help="PostgreSQL: pgBackRest's backup type (default full)",
        )
        create.add_argument(
            "--if-older-than",
            metavar="AGE",
            help="do nothing when the newest backup is younger than AGE (24h, 90m, 2d)",
        )
        sub.add_parser(
            "setup", help="PostgreSQL: write pgBackRest's stanza and the cluster's archive_command"
        )
        verify = sub.add_parser("verify", help="restore a backup into scratch and check it")
        verify.add_argument("backup_id")
        verify.add_argument("--json", action="store_true")
        listing = sub.add_parser("list", help="the backups, newest first, with their verification")
        listing.add_argument("--json", action="store_true")
        prune = sub.add_parser(
            "prune", help="remove backups a daily/weekly/monthly retention no longer keeps"
        )
        prune.add_argument("--keep-daily", type=int, default=7)
        prune.add_argument("--keep-weekly", type=int, default=4)
        prune.add_argument("--keep-monthly", type=int, default=12)
        prune.add_argument("--dry-run", action="store_true")
        put_back = sub.add_parser(
            "restore", help="verify a backup, then put it in place of the live database"
        )
        put_back.add_argument("backup_id")
        put_back.add_argument("--target-time", help="PostgreSQL only: the moment to restore to")
        put_back.add_argument("--force", action="store_true", help="replace the live database (kept aside)")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "create":
                self._create(options["if_older_than"], options["kind"])
            elif action == "setup":
                self._setup()
            elif action == "verify":
                self._verify(options["backup_id"], as_json=options["json"])
            elif action == "list":
                self._list(as_json=options["json"])
            elif action == "prune":
                self._prune(
                    options["keep_daily"], options["keep_weekly"], options["keep_monthly"], options["dry_run"]
                )
            else:
                self._restore(options["backup_id"], options["target_time"], force=options["force"])
        except FapiaoError as error:
            raise CommandError(error.render(gettext)) from None

    def _setup(self) -> None:
        done = pgbackrest.setup()
        self.stdout.write(
            gettext("pgBackRest stanza {stanza}: configuration {config}, repository {repo}.").format(
                stanza=settings.FAPIAO_PGBACKREST_STANZA,
                config=done.config,
                repo=settings.FAPIAO_PGBACKREST_REPO,
            )
        )
        self.stdout.write(gettext("archive_command = {command}").format(command=done.archive_command))
        if done.needs_restart:
            self.stderr.write(
                gettext(
                    "archive_mode was off: it is switched on, which takes effect when PostgreSQL restarts. "
                    "Restart PostgreSQL, then run `fapiao backup setup` again."
                )
            )
            raise SystemExit(1)
        self.stdout.write(gettext("Stanza created and archiving checked: `fapiao backup create` is ready."))

    def _create(self, if_older_than: str | None, kind: str | None = None) -> None:
        if if_older_than:
            try:
                age = parse_age(if_older_than)
            except ValueError:
                raise CommandError(
                    gettext("--if-older-than takes an age such as 24h, 90m or 2d, not {value!r}.").format(
                        value=if_older_than
                    )
                ) from None
            newest = retention.listing()[:1]
            if newest and newest[0]["created_at"] > (timezone.now() - age).strftime("%Y-%m-%dT%H:%M:%SZ"):
                self.stdout.write(
                    gettext("Backup {backup_id} is younger than {age}: nothing to do.").format(
                        backup_id=newest[0]["id"], age=if_older_than
                    )
                )
                return
        created = service.create_backup(kind=kind)
        for name in created.cleaned:
            self.stderr.write(
                gettext("Removed {name}, left by a backup that never finished.").format(name=name)
            )
        self.stdout.write(
            gettext("Backup {backup_id}: {files} files, {size} bytes, {seconds:.1f} s, in {path}.").format(
                backup_id=created.backup.backup_id,
                files=created.files,
                size=created.bytes,
                seconds=created.seconds,
                path=created.backup.path,
            )
        )
        self.stdout.write(
            gettext("Prove it restores: fapiao backup verify {backup_id}").format(
                backup_id=created.backup.backup_id
            )
        )

    def _verify(self, backup_id: str, *, as_json: bool) -> None:
        result = verification.verify_backup(backup_id)
        if as_json:
            document = {
                "backup": result.backup_id,
                "ok": result.ok,
                "problems": result.problems,
                "invoices": result.invoices,
                "entries": result.entries,
                "seconds": round(result.seconds, 3),
            }
            self.stdout.write(json.dumps(document, ensure_ascii=False, indent=2))
        elif result.ok:
            self.stdout.write(
                gettext(
                    "Backup {backup_id} restores and verifies: {invoices} invoices, {entries} ledger "
                    "entries, ledger and audit verify clean, the manifest matches ({seconds:.1f} s)."
                ).format(
                    backup_id=backup_id,
                    invoices=result.invoices,
                    entries=result.entries,
                    seconds=result.seconds,
                )
            )
        else:
            self.stderr.write(gettext("Backup {backup_id} FAILED verification:").format(backup_id=backup_id))
            for problem in result.problems:
                self.stderr.write(f"  - {problem}")
        if not result.ok:
            raise SystemExit(1)

    def _list(self, *, as_json: bool) -> None:
        rows = retention.listing()
        if as_json:
            self.stdout.write(json.dumps({"backups": rows}, ensure_ascii=False, indent=2))
            return
        if not rows:
            self.stdout.write(gettext("No backups yet in this backup directory."))
            return
        for row in rows:
            verified = {None: gettext("not verified"), True: gettext("verified"), False: gettext("FAILED")}[
                row["verified"]
            ]
            self.stdout.write(f"{row['id']}  {row['created_at']}  {row['bytes']:>14,}  {verified}")

    def _prune(self, daily: int, weekly: int, monthly: int, dry_run: bool) -> None:
        kept, removed = retention.prune(daily=daily, weekly=weekly, monthly=monthly, dry_run=dry_run)
        for backup_id in removed:
            message = gettext("would remove {backup_id}") if dry_run else gettext("removed {backup_id}")
            self.stdout.write(message.format(backup_id=backup_id))
        self.stdout.write(gettext("{kept} backups kept.").format(kept=len(kept)))

    def _restore(self, backup_id: str, target_time: str | None, *, force: bool) -> None:
        result = restore.restore_backup(backup_id, force=force, target_time=target_time)
        if result.moved_aside:
            self.stdout.write(
                gettext("The database it replaced is kept as {path}.").format(path=result.moved_aside)
            )
        self.stdout.write(gettext("Backup {backup_id} restored and verified.").format(backup_id=backup_id))
        for lost in result.lost:
            self.stderr.write(
                gettext(
                    "log_shorter: log {log} lost entries {first}..{last} written after the backup "
                    "(integrity incident {incident}). The receipts merchants kept prove each of them; "
                    "see docs/operations/backup.md, Restoring."
                ).format(log=lost.log, first=lost.first, last=lost.last, incident=lost.incident)
            )
        for lost in result.audit_lost:
            self.stderr.write(
                gettext(
                    "audit_lost: audit log {log} lost records {first}..{last} written after the backup "
                    "(integrity incident {incident}); nothing can bring them back."
                ).format(log=lost.log, first=lost.first, last=lost.last, incident=lost.incident)
            )
        if result.audit_witness_aside:
            self.stderr.write(
                gettext(
                    "The audit witness is re-based at the restored heads; the one it replaced is kept as "
                    "{path}. See docs/operations/backup.md, Restoring."
                ).format(path=result.audit_witness_aside)
            )
        if result.lost:
            raise SystemExit(1)
