"""`fapiao issue --jsonl FILE`: one invoice per line, issued through the bulk API's path."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from fapiao.invoices.models import Invoice

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def write_lines(path: Path, values: list[object]) -> Path:
    path.write_text("\n".join(json.dumps(value, ensure_ascii=False) for value in values) + "\n", "utf-8")
    return path


def test_every_line_is_issued_and_a_second_run_issues_nothing_twice(demo, tmp_path: Path, valid_invoice):
    source = write_lines(
        tmp_path / "month.jsonl", [valid_invoice, valid_invoice, {"key": "mine", "invoice": valid_invoice}]
    )
    out = run("issue", "--jsonl", str(source), "--user", "clerk")
    assert "共 3 张：开具 3 张，失败 0 张" in out
    numbers = set(Invoice.objects.values_list("number", flat=True))
    assert len(numbers) == 3 and all(number in out for number in numbers)
    again = run("issue", "--jsonl", str(source), "--user", "clerk")
    assert again.count("（此前已开具）") == 3
    assert Invoice.objects.count() == 3


def test_bad_lines_are_reported_and_the_good_ones_issued(demo, tmp_path: Path, valid_invoice):
    broken: dict[str, Any] = copy.deepcopy(valid_invoice)
    broken["lines"][0]["tax_rate"] = "0.07"
    source = write_lines(tmp_path / "mixed.jsonl", [valid_invoice, broken, valid_invoice])
    with pytest.raises(CommandError, match="开具 2 张，失败 1 张"):
        run("issue", "--jsonl", str(source), "--user", "clerk")
    assert Invoice.objects.count() == 2


def test_all_or_nothing_issues_nothing_when_a_line_is_bad(demo, tmp_path: Path, valid_invoice):
    broken: dict[str, Any] = copy.deepcopy(valid_invoice)
    broken["lines"][0]["tax_rate"] = "0.07"
    source = write_lines(tmp_path / "strict.jsonl", [valid_invoice, broken])
    with pytest.raises(CommandError, match=r"items\.1\.invoice\.lines\.0\.tax_rate"):
        run("issue", "--jsonl", str(source), "--all-or-nothing", "--user", "clerk")
    assert Invoice.objects.count() == 0


@pytest.mark.parametrize(
    ("text", "reason"),
    [("", "没有要开具的发票"), ('{"kind": "ordinary"}\n{oops\n', "第 2 行不是有效的 JSON")],
)
def test_unreadable_files_are_refused_with_a_reason(demo, tmp_path: Path, text, reason):
    source = tmp_path / "bad.jsonl"
    source.write_text(text, "utf-8")
    with pytest.raises(CommandError, match=reason):
        run("issue", "--jsonl", str(source), "--user", "clerk")
    assert Invoice.objects.count() == 0


def test_a_file_and_jsonl_together_are_refused(demo, tmp_path: Path):
    with pytest.raises(CommandError, match="either FILE"):
        run("issue", str(tmp_path / "a.json"), "--jsonl", str(tmp_path / "b.jsonl"), "--user", "clerk")


def test_a_file_longer_than_a_batch_is_sent_in_several(demo, tmp_path: Path, valid_invoice, monkeypatch):
    from fapiao.invoices.management.commands import issue as command

    monkeypatch.setattr(command, "MAX_ITEMS", 2)
    source = write_lines(tmp_path / "long.jsonl", [valid_invoice] * 5)
    out = run("issue", "--jsonl", str(source), "--user", "clerk")
    assert "共 5 张：开具 5 张，失败 0 张" in out and out.count("已开具") == 5
    assert Invoice.objects.count() == 5
