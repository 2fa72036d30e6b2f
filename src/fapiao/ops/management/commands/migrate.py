"""``fapiao migrate``: Django's migrate, with a check that the migrations changed no merchant's records.

This command overrides Django's own (an app's command wins over Django's core commands, and no app
listed before ``fapiao.ops`` has a ``migrate``).  When there are migrations to apply, it snapshots
every merchant's figures (:mod:`fapiao.ops.migration_measures`) just before Django applies them — in
the ``pre_migrate`` signal, which carries Django's own plan — and again after, and compares
(:mod:`fapiao.ops.migration_check`).  Any difference fails the command (exit 1) with a Chinese
message naming each merchant and what changed, and opens an integrity incident per merchant.

Nothing is checked when nothing is applied (no pending migration, ``--plan``, ``--check``), and a
database without the merchant table (a new installation, the test database) has nothing to lose.
``--no-data-check`` skips the check, for a migration that is meant to change those figures.
"""

from __future__ import annotations

import time
from typing import Any

from django.apps import AppConfig
from django.core.management.base import CommandError, CommandParser
from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import DatabaseError
from django.db.models.signals import pre_migrate

from fapiao.ops.migration_check import compare, describe, report_changes
from fapiao.ops.migration_measures import Bound, Snapshot, merchant_names, take_snapshot


class Command(DjangoMigrate):
    help = (
        "Apply the database migrations, checking that they change no merchant's invoices, totals, "
        "ledger or audit log (fapiao migrate)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--no-data-check",
            action="store_true",
            help="skip the before/after comparison of every merchant's records (a deliberate data change)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["no_data_check"] or options["plan"] or options["check_unapplied"]:
            super().handle(*args, **options)
            return
        using = options["database"]
        taken: dict[str, Any] = {}

        def before(sender: AppConfig, *, plan: list[Any] | None = None, **kwargs: Any) -> None:
            if "snapshot" in taken or not plan or kwargs.get("using", using) != using:
                return
            taken["migrations"] = [f"{m.app_label}.{m.name}{' (撤销)' if back else ''}" for m, back in plan]
            taken["snapshot"] = self._snapshot(using, "迁移前")

        pre_migrate.connect(before, weak=False, dispatch_uid="fapiao.migration_check")
        try:
            super().handle(*args, **options)
        except CommandError:
            raise
        except Exception as exc:
            # A migration failed: those applied before it stay applied, and may have changed data.
            self._check(taken, using, failed=True)
            raise CommandError(
                f"迁移失败：{type(exc).__name__}: {exc}\n在它之前的迁移已经执行（见 fapiao showmigrations）；"
                "加 --traceback 可看到出错位置。"
            ) from exc
        finally:
            pre_migrate.disconnect(dispatch_uid="fapiao.migration_check")
        self._check(taken, using, failed=False)

    def _check(self, taken: dict[str, Any], using: str, *, failed: bool) -> None:
        earlier: Snapshot | None = taken.get("snapshot")
        if earlier is None or not earlier.figures:  # None: no merchant table; {}: nothing recorded yet
            return
        if not failed:
            self._compare(earlier, using=using, migrations=taken["migrations"])
            return
        try:  # the migration's own error is what the command ends with; say what else is wrong first
            self._compare(earlier, using=using, migrations=taken["migrations"])
        except CommandError as changed:
            self.stderr.write(str(changed))

    def _snapshot(self, using: str, when: str, bound: Bound | None = None) -> Snapshot | None:
        started = time.perf_counter()
        try:
            snapshot = take_snapshot(using, bound=bound)
        except DatabaseError as exc:
            if bound is None:
                raise CommandError(
                    f"无法在迁移前核对商户数据（{exc}），没有执行任何迁移。核对所读的表或字段与数据库不符时，"
                    "先备份并验证备份，再用 --no-data-check 执行。"
                ) from exc
            raise CommandError(
                f"迁移已执行，但无法在迁移后核对商户数据（{exc}）："
                "迁移可能删除或改名了发票、账本或审计日志的表或字段。请先停用新版本，"
                "用 fapiao ledger verify 和 fapiao audit verify 检查，必要时用升级前的备份恢复。"
            ) from exc
        if self.verbosity >= 2:
            spent = time.perf_counter() - started
            owners = len(snapshot.figures) if snapshot else 0
            self.stdout.write(f"{when}快照：{owners} 个商户，用时 {spent:.3f} 秒")
        return snapshot

    def _compare(self, earlier: Snapshot, *, using: str, migrations: list[str]) -> None:
        later = self._snapshot(using, "迁移后", earlier.bound)
        changes = compare(earlier.figures, later.figures if later else {})
        if not changes:
            if self.verbosity >= 1:
                checked = f"核对了 {len(earlier.figures)} 个商户迁移前已有的发票、合计、账本和审计日志"
                self.stdout.write(f"迁移前后数据一致：{checked}。")
            return
        try:
            report_changes(changes, migrations=migrations, using=using)
            names = merchant_names(using, sorted({change.owner for change in changes}))
        except DatabaseError as exc:  # the migrations broke the very tables an incident is written to
            message = describe(changes, names={}, migrations=migrations, opened=False)
            raise CommandError(f"{message}\n无法登记数据完整性事件（{exc}）：请立即按上述处理。") from exc
        raise CommandError(describe(changes, names=names, migrations=migrations))
