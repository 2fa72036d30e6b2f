from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import translation

from fapiao.accounts.cli import acting_user, add_user_argument, command_error
from fapiao.accounts.models import User
from fapiao.core.errors import FapiaoError
from fapiao.invoices.bulk import MAX_ITEMS, issue_batch
from fapiao.invoices.services import issue_invoice


class Command(BaseCommand):
    help = (
        "Issue a blue invoice from a JSON file shaped like the POST /api/v1/invoices body; or, with "
        "--jsonl, one invoice per line through the bulk API's path (POST /api/v1/invoice-batches)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, nargs="?")
        parser.add_argument(
            "--jsonl",
            type=Path,
            metavar="FILE",
            help='JSON Lines: each line an invoice, or {"key": …, "invoice": {…}}. A line without a key '
            "gets <the file's SHA-256>-<line number>, so issuing the same file again issues nothing twice.",
        )
        parser.add_argument(
            "--all-or-nothing", action="store_true", help="--jsonl: any bad line refuses its whole batch"
        )
        add_user_argument(parser)
        parser.add_argument("--idempotency-key", default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        if (options["file"] is None) == (options["jsonl"] is None):
            raise CommandError("give either FILE (one invoice) or --jsonl FILE (one invoice per line)")
        user = acting_user(options["user"])
        if options["jsonl"] is not None:
            with translation.override("zh-hans"):  # the items' problems, as the API gives them
                self.issue_lines(user, options["jsonl"], all_or_nothing=options["all_or_nothing"])
            return
        payload = _read(options["file"], json.loads)
        try:
            result = issue_invoice(user=user, payload=payload, idempotency_key=options["idempotency_key"])
        except FapiaoError as error:
            raise command_error(error) from None
        self.stdout.write(json.dumps(result.body, ensure_ascii=False, indent=2))

    def issue_lines(self, user: User, path: Path, *, all_or_nothing: bool) -> None:
        items = _read(path, _items)
        if not items:
            raise CommandError(f"{path}：没有要开具的发票")
        issued = failed = 0
        for start in range(0, len(items), MAX_ITEMS):
            chunk = items[start : start + MAX_ITEMS]
            payload = {"all_or_nothing": all_or_nothing, "items": [item for _line, item in chunk]}
            try:
                result = issue_batch(user=user, payload=payload)
            except FapiaoError as error:
                raise command_error(error) from None
            for (line, _item), answer in zip(chunk, result.body["items"], strict=True):
                if answer["status"] == 201:
                    issued += 1
                    again = "（此前已开具）" if answer.get("replayed") else ""
                    self.stdout.write(f"第 {line} 行：已开具 {answer['invoice']['number']}{again}")
                else:
                    failed += 1
                    problem = answer["problem"]
                    fields = "；".join(f"{e['field']}：{e['message']}" for e in problem.get("errors", []))
                    self.stdout.write(
                        f"第 {line} 行：未开具：{problem['detail']}" + (f"（{fields}）" if fields else "")
                    )
        summary = f"共 {len(items)} 张：开具 {issued} 张，失败 {failed} 张"
        if failed:
            raise CommandError(summary)
        self.stdout.write(summary)


def _read(path: Path, parse: Any) -> Any:
    try:
        return parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise CommandError(f"无法读取 {path}：{error}") from None
    except json.JSONDecodeError as error:
        raise CommandError(f"{path} 不是有效的 JSON：{error}") from None


def _items(text: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, bulk item) for every non-blank line; a line without a key gets one."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    items: list[tuple[int, dict[str, Any]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise CommandError(f"第 {number} 行不是有效的 JSON：{error}") from None
        if isinstance(value, dict) and "invoice" in value and "key" in value:
            items.append((number, value))
        else:
            items.append((number, {"key": f"{digest}-{number}", "invoice": value}))
    return items
