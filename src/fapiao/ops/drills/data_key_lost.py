"""``fapiao drill data-key-lost``: the data key file is lost; the sealed buyer fields cannot be read
until it comes back from its separate backup (应急预案, scenario 6).

On the scratch copy, with its own key directory (:mod:`fapiao.ops.drills.scratch`): invoices with
sealed buyer fields, the key file copied to a "key safe" beside it (the plan's offline copy), then
the key file deleted.  The server does what it does with a missing key file — makes a new one —
and the sealed fields no longer decrypt; ``fapiao ledger verify`` fails (the rows cannot be turned
back into their ledger documents).  Then the plan's way back: the file installed from the key safe
(0600), every field readable again, ``fapiao ledger verify`` exit 0, the incidents verify opened
acknowledged and resolved, and a new backup made and verified.  RTO: from the key's return until
the ledger verifies clean.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from fapiao.invoices.models import Invoice
from fapiao.invoices.sensitive import reveal_buyer
from fapiao.ops.drills import Scenario, register, scratch
from fapiao.platform import datakeys

NAME = "data-key-lost"


def add_arguments(parser: Any) -> None:
    scratch.add_arguments(parser, invoices=4)


def run(options: dict[str, Any]) -> dict[str, Any]:
    return scratch.run_drill(NAME, options, inside, markdown, default_invoices=4)


def _readable(numbers: list[str]) -> int:
    """How many of these invoices' sealed buyer addresses decrypt to what was issued."""
    datakeys.forget_cached()
    readable = 0
    for invoice in Invoice.objects.filter(number__in=numbers):
        try:
            readable += reveal_buyer(invoice).address == scratch.SEALED_ADDRESS
        except Exception:  # noqa: S112  any failure to decrypt is what the drill counts
            continue
    return readable


def inside(work: Path, count: int) -> dict[str, Any]:
    record = scratch.Record(work=work)
    already = set(scratch.open_incidents())
    began = time.monotonic()
    issued = scratch.issue_invoices(work / "receipts", max(count, 2), sealed_every=2)
    sealed = [item["number"] for index, item in enumerate(issued) if index % 2 == 1]
    key_file = Path(settings.KEYS_DIR) / datakeys.FILE_NAME
    safe = work / "key-safe" / f"data-keys-{timezone.now():%Y%m%d}.json"
    safe.parent.mkdir(mode=0o700)
    shutil.copy2(key_file, safe)
    record.step("before", began, _readable(sealed) == len(sealed), sealed=len(sealed))

    began = time.monotonic()
    key_file.unlink()
    unreadable = len(sealed) - _readable(sealed)  # a new, empty key file was made meanwhile
    record.step("key_lost", began, unreadable == len(sealed), unreadable=unreadable)
    failed = scratch.ledger_verify()
    record.check(failed, expect=1, when="key lost")
    findings = scratch.verify_findings(failed)
    opened = [pk for pk in scratch.open_incidents() if pk not in already]

    began = time.monotonic()
    back = time.monotonic()
    temporary = key_file.with_name(f".{key_file.name}.restore")
    shutil.copyfile(safe, temporary)
    os.chmod(temporary, 0o600)
    os.replace(temporary, key_file)  # install -m 600 key-safe/data-keys-….json keys/data-keys.json
    readable = _readable(sealed)
    record.step("key_restored", began, readable == len(sealed), readable=readable)
    record.check(scratch.ledger_verify())
    rto = time.monotonic() - back
    scratch.resolve_incidents(
        record, opened, "drill data-key-lost: data-keys.json restored from the key safe"
    )
    scratch.backup_and_verify(record)
    return record.result(ok=True, rto_seconds=rto, incidents=opened, findings_while_lost=findings)


def markdown(report: dict[str, Any]) -> str:
    return scratch.markdown(report)


register(
    Scenario(
        NAME,
        "the data key file lost: sealed buyer fields unreadable; restored from the key safe, verify clean",
        run,
        add_arguments,
        markdown,
    )
)
