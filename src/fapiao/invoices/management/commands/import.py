"""``fapiao import``: bring invoice files into a merchant's records (docs/guide/import.md, docs/cli.md).

    fapiao import FILES... --merchant USCC --direction out|in [--mapping NAME] --dry-run | --commit
                  [--resume RUN] [--report DIR]
    fapiao import revert RUN
    fapiao import verify RUN [FILES...]

Only parses arguments, calls the services and prints (in Chinese).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from fapiao.accounts.cli import acting_user, add_user_argument, command_error
from fapiao.accounts.models import Merchant
from fapiao.core.choices import Direction
from fapiao.core.errors import FapiaoError
from fapiao.formats.mapping import ColumnMapping
from fapiao.invoices import importing
from fapiao.invoices.import_manifest import verify_run, write_report
from fapiao.invoices.import_plan import Plan, SourceFile
from fapiao.invoices.models import ImportRun


def load_mapping(name: str) -> ColumnMapping:
    """A saved column mapping: ``NAME`` (``NAME.json`` in the mappings directory) or a path to a JSON file."""
    path = Path(name) if name.endswith(".json") else settings.FAPIAO_IMPORT_MAPPINGS_DIR / f"{name}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        raise CommandError(f"找不到列映射 {name}（应为 {path}）") from None
    except (ValueError, UnicodeDecodeError):
        raise CommandError(f"列映射 {path} 不是有效的 JSON") from None
    mapping, problems = ColumnMapping.from_dict(data if isinstance(data, dict) else {})
    if mapping is None:
        raise CommandError(
            "\n".join([f"列映射 {path} 有误：", *(f"  {p.field}: {p.render()}" for p in problems)])
        )
    return mapping


def read_sources(paths: list[str]) -> list[SourceFile]:
    limit = settings.FAPIAO_IMPORT_MAX_FILE_MB * 1024 * 1024
    sources: list[SourceFile] = []
    for name in paths:
        path = Path(name)
        try:
            size = path.stat().st_size
            if size > limit:
                raise CommandError(
                    f"文件 {name} 太大（{size} 字节，上限 {settings.FAPIAO_IMPORT_MAX_FILE_MB} MB），"
                    "未导入任何内容"
                )
            data = path.read_bytes()
        except OSError as error:
            raise CommandError(f"无法读取文件 {name}：{error.strerror}") from None
        sources.append(SourceFile.of(path.name, str(path.resolve()), data))
    return sources


class Command(BaseCommand):
    help = "Import invoice files (数电票 XML, OFD, PDF, CSV/XLSX) into a merchant's records; revert; verify."

    def add_arguments(self, parser: CommandParser) -> None:
        add_user_argument(parser)
        parser.add_argument("files", nargs="+", help="FILES..., or: revert RUN, or: verify RUN [FILES...]")
        parser.add_argument("--merchant", default="", help="the merchant's USCC")
        parser.add_argument("--direction", choices=["out", "in"], default="out")
        parser.add_argument("--mapping", default="", help="a saved column mapping (CSV/XLSX)")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--dry-run", action="store_true")
        mode.add_argument("--commit", action="store_true")
        parser.add_argument("--resume", default="", help="carry on an interrupted run")
        parser.add_argument("--report", default="", help="write the manifest and the reasons file here")
        parser.add_argument("--batch", type=int, default=importing.BATCH)

    def handle(self, *args: Any, **options: Any) -> None:
        user = acting_user(options["user"])
        files: list[str] = options["files"]
        try:
            if files[0] in ("revert", "verify") and len(files) >= 2 and not Path(files[0]).exists():
                self._run_action(user, files[0], files[1], files[2:], options)
                return
            self._import(user, files, options)
        except FapiaoError as error:
            raise command_error(error) from None

    def _run_action(self, user: Any, action: str, run_id: str, paths: list[str], options: Any) -> None:
        if action == "revert":
            run = importing.revert_import(user=user, run_id=run_id)
            self.stdout.write(
                f"已撤销导入批次 {run.run_id}：{run.counts.get('accepted', 0)} 张发票"
                "已标记为已撤销导入（未删除任何记录）"
            )
            return
        run = importing.find_run(user=user, run_id=run_id)
        if not run.manifest:
            raise CommandError(f"导入批次 {run_id} 尚未完成，没有清单")
        problems = verify_run(run, paths=paths)
        if problems:
            raise CommandError(
                "\n".join([f"导入批次 {run_id} 与其清单不符：", *(f"  - {p}" for p in problems)])
            )
        self.stdout.write(f"导入批次 {run_id} 与其签名清单一致")

    def _import(self, user: Any, files: list[str], options: Any) -> None:
        if not options["dry_run"] and not options["commit"]:
            raise CommandError("请选择 --dry-run（只预检）或 --commit（导入）")
        merchant = Merchant.objects.filter(uscc=options["merchant"].strip().upper()).first()
        if merchant is None:
            raise CommandError(f"找不到统一社会信用代码为 {options['merchant']!r} 的商户（--merchant）")
        mapping = load_mapping(options["mapping"]) if options["mapping"] else None
        sources = read_sources(files)
        opts = importing.ImportOptions(
            merchant, Direction(options["direction"]), mapping, max(1, options["batch"])
        )
        if options["dry_run"]:
            plan = importing.dry_run(user=user, options=opts, sources=sources)
            self._show_plan(plan)
            return
        try:
            run = importing.commit_import(
                user=user,
                options=opts,
                sources=sources,
                resume=options["resume"] or None,
                progress=lambda done, total: self.stderr.write(f"已导入 {done}/{total}"),
            )
        except DatabaseError as error:
            # A batch that failed rolled back whole; the batches before it stay, with their records.
            started = ImportRun.objects.filter(merchant=merchant).order_by("-pk").first()
            hint = f"，处理后用 --resume {started.run_id} 继续" if started is not None else ""
            raise CommandError(f"导入中断（数据库拒绝了一批记录：{type(error).__name__}）{hint}") from None
        self._show_run(run)
        if options["report"]:
            for path in write_report(run, Path(options["report"])):
                self.stdout.write(f"报告：{path}")

    def _show_plan(self, plan: Plan) -> None:
        counts = plan.counts()
        for planned in plan.files:
            summary = planned.summary()
            self.stdout.write(
                f"{summary['name']}（{summary['format']}）：读取 {summary['read']} 条，"
                f"可导入 {summary['accepted']}，"
                f"拒绝 {summary['rejected']}，重复 {summary['duplicates']}"
            )
            for problem in planned.problems:
                self.stdout.write(f"  文件问题：{problem['message']} [{problem['code']}]")
            for record in planned.records:
                for reason in record.reasons:
                    self.stdout.write(
                        f"  第 {record.position + 1} 条 {record.number}："
                        f"{reason['message']} [{reason['code']}]"
                    )
        self.stdout.write(
            f"预检（未写入任何数据）：读取 {counts['read']}，可导入 {counts['accepted']}，"
            f"拒绝 {counts['rejected']}，重复 {counts['duplicates']}"
        )

    def _show_run(self, run: ImportRun) -> None:
        counts = run.counts
        self.stdout.write(
            f"导入批次 {run.run_id}：读取 {counts['read']}，已导入 {counts['accepted']}，"
            f"拒绝 {counts['rejected']}，重复 {counts['duplicates']}"
        )
