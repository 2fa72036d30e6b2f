"""``fapiao drill signing-key-compromised``: declare the signing key stolen from a time, and prove
that receipts from before still verify, those signed since with it do not, and fresh ones do
(应急预案, scenario 5).

On the scratch copy, with its own copy of the key directory (:mod:`fapiao.ops.drills.scratch`):
an invoice before the time the key is taken to have left our control, one after (its receipt
signed with the stolen key), then the plan's commands — ``fapiao keys compromised KEY --since T
--dry-run``, the same for real (a new key made current, later heads re-signed), run again (nothing
left to re-sign), ``fapiao keys export-public`` and ``fapiao receipt verify … --public-key``: the
earlier receipt verifies, the later one is refused, its fresh copy (``GET …/receipt``) verifies,
and a new invoice is signed with the new key.  ``fapiao ledger verify`` exit 0.  RTO: from the
declaration until the fresh receipt verifies.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.utils import timezone

from fapiao.ledger import key_custody
from fapiao.ops.drills import Scenario, register, scratch

NAME = "signing-key-compromised"


def add_arguments(parser: Any) -> None:
    scratch.add_arguments(parser, invoices=2)


def run(options: dict[str, Any]) -> dict[str, Any]:
    return scratch.run_drill(NAME, options, inside, markdown, default_invoices=2)


def _current() -> tuple[str, dict[str, str]]:
    listed = scratch.command("keys", "list", "--json").json()
    status = {str(k.get("key_id")): str(k.get("status")) for k in listed.get("keys", [])}
    return str(listed.get("current")), status


def inside(work: Path, count: int) -> dict[str, Any]:
    record = scratch.Record(work=work)
    began = time.monotonic()
    earlier = scratch.issue_invoices(work / "receipts" / "before", count)
    old_key, _status = _current()
    time.sleep(1.1)  # the stolen key's time starts strictly after the earlier heads
    since = timezone.now().isoformat()
    time.sleep(1.1)
    stolen = scratch.issue_invoices(work / "receipts" / "stolen", 1)
    record.step("invoices", began, bool(earlier and stolen), key=old_key, since=since)

    began = time.monotonic()
    record.check(
        scratch.command("keys", "compromised", old_key, "--since", since, "--dry-run"), when="dry run"
    )
    declared = time.monotonic()
    record.check(scratch.command("keys", "compromised", old_key, "--since", since))
    record.check(scratch.command("keys", "compromised", old_key, "--since", since), when="again")
    left_over = key_custody.declare_compromised(old_key, key_custody.parse_since(since), dry_run=True)
    left, audit_left = left_over.heads, len(left_over.audit_heads)
    new_key, status = _current()
    record.step(
        "compromised",
        began,
        new_key != old_key and status.get(old_key) == "compromised" and left == 0 and audit_left == 0,
        new_key=new_key,
        old_status=status.get(old_key),
        heads_left_to_resign=left,
        audit_heads_left_to_resign=audit_left,
    )
    record.check(scratch.audit_verify(), when="the audit heads re-signed too (no key_compromised)")

    public = work / "public-keys.json"
    record.check(scratch.command("keys", "export-public", str(public)))
    for item in earlier:
        record.check(scratch.command("receipt", "verify", item["receipt"], "--public-key", str(public)))
    for item in stolen:
        refused = scratch.command("receipt", "verify", item["receipt"], "--public-key", str(public))
        record.check(refused, expect=1, when="signed with the stolen key")

    began = time.monotonic()
    api = scratch.Api(scratch.issuers()[0])
    fresh_keys = []
    for item in stolen:
        fresh = api.get(f"/api/v1/invoices/{item['number']}/receipt")
        path = work / "receipts" / "fresh" / f"{item['number']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(fresh.body, ensure_ascii=False), encoding="utf-8")
        fresh_keys.append(fresh.body.get("head", {}).get("key_id"))
        record.check(
            scratch.command("receipt", "verify", str(path), "--public-key", str(public)), when="fresh"
        )
    rto = time.monotonic() - declared
    record.step("fresh_receipts", began, fresh_keys == [new_key] * len(stolen), key_ids=fresh_keys)

    began = time.monotonic()
    later = scratch.issue_invoices(work / "receipts" / "after", 1)
    signed = json.loads(Path(later[0]["receipt"]).read_text(encoding="utf-8"))["head"]["key_id"]
    record.check(scratch.command("receipt", "verify", later[0]["receipt"], "--public-key", str(public)))
    record.step("new_invoice_new_key", began, signed == new_key, key_id=signed)
    record.check(scratch.ledger_verify())
    return record.result(ok=True, rto_seconds=rto, old_key=old_key, new_key=new_key, since=since)


def markdown(report: dict[str, Any]) -> str:
    return scratch.markdown(report)


register(
    Scenario(
        NAME,
        "the signing key declared stolen from a time: new key, heads re-signed, old receipts still verify",
        run,
        add_arguments,
        markdown,
    )
)
