"""``fapiao drill database-lost``: lose the database, and prove the way back (应急演练).

On a scratch copy of this installation — never the live database — it rehearses the disaster
the backups are for: **backup → more invoices (their receipts kept, as merchants keep them) →
the database destroyed → restore → verify → replay the receipts → verify**, and reports

- **RTO**: seconds from the database's loss until the ledger verifies clean again;
- **RPO**: per log (named), the entries the restore lost (the witness saw them, the backup did
  not) — and what the replay brought back, so a closed RPO is shown, not assumed;
- each step's time and result; what the audit trail lost (the audit trail has no receipts to
  replay from: its records written after the backup are gone, as the audit verify shows).

The drill runs in a child process whose every path (``FAPIAO_VAR_DIR``, the database, evidence,
witness files, backup directory and backup key) points into ``$FAPIAO_VAR_DIR/drills/<id>.work``,
made from a consistent snapshot of the live database; only the signing and data keys are the
live ones (read, never written).  The child refuses to destroy a database outside that folder.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext

from fapiao.accounts.choices import Role
from fapiao.accounts.models import User
from fapiao.audit.verify import verify_audit
from fapiao.core.canonical import utc_stamp
from fapiao.core.errors import ConflictError, FapiaoError
from fapiao.invoices.services import issue_invoice
from fapiao.ledger.models import Log
from fapiao.ledger.verify import verify_ledger
from fapiao.ops.backup.restore import restore_backup
from fapiao.ops.backup.service import (
    DATABASE,
    EVIDENCE,
    WITNESS,
    create_backup,
    database_path,
    snapshot_sqlite,
)
from fapiao.ops.drills import FORMAT, Scenario, drills_dir, new_id, register, save_report
from fapiao.recovery.replay import replay_receipts

NAME = "database-lost"
MARKER = ".fapiao-drill"
CHILD_TIMEOUT = 900

DRILL_INVOICE: dict[str, Any] = {
    "kind": "ordinary",
    "buyer": {"name": "应急演练买方有限公司", "tax_id": "91110000MA01XKQ2TQ"},
    "lines": [
        {
            "name": "*信息技术服务*应急演练",
            "tax_code": "3040201000000000000",
            "unit": "项",
            "quantity": "1",
            "unit_price": "100.00",
            "tax_rate": "0.06",
        }
    ],
}


class DrillFailedError(ConflictError):
    """The drill could not be run: {reason}"""

    code = "drill_failed"


class DrillNeedsSqliteError(ConflictError):
    """The database-lost drill runs on SQLite; on {vendor}, rehearse with `fapiao backup verify` and a restore to a staging cluster (docs/operations/backup.md)."""  # noqa: E501

    code = "drill_needs_sqlite"


class NotADrillCopyError(ConflictError):
    """Refused: {path} is not a drill's scratch copy. A drill destroys only the copy it made itself."""

    code = "not_a_drill_copy"


def add_arguments(parser: Any) -> None:
    parser.add_argument(
        "--invoices", type=int, default=6, help="invoices to issue after the backup (they are what is lost)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch copy (drills/<id>.work)")
    parser.add_argument("--inside", help=argparse.SUPPRESS, default=None)  # the child process


# --- the parent: a scratch copy, the child, the report ------------------------------------------------


def run(options: dict[str, Any]) -> dict[str, Any]:
    if connection.vendor != "sqlite":
        raise DrillNeedsSqliteError(vendor=connection.vendor)
    count = int(options.get("invoices") or 6)
    if not 1 <= count <= 1000:
        raise DrillFailedError(reason=gettext("--invoices takes 1 to 1000"))
    if options.get("inside"):
        return inside(Path(options["inside"]), count)
    started = timezone.now()
    drill_id = new_id(NAME, started)
    work = drills_dir() / f"{drill_id}.work"
    work.mkdir(parents=True, mode=0o700)
    try:
        (work / MARKER).write_text(drill_id + "\n")
        _scratch_copy(work)
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "fapiao.cli",
                "drill",
                NAME,
                "--inside",
                str(work),
                "--invoices",
                str(count),
            ],
            env=_child_environment(work),
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT,
            check=False,
        )
        try:
            inner = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else None
        except ValueError:
            inner = None
        if not isinstance(inner, dict):
            tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-6:])
            raise DrillFailedError(reason=f"exit {done.returncode}: {tail}")
    finally:
        if not options.get("keep"):
            shutil.rmtree(work, ignore_errors=True)
    report = {
        "format": FORMAT,
        "id": drill_id,
        "scenario": NAME,
        "started_at": utc_stamp(started),
        "finished_at": utc_stamp(timezone.now()),
        "engine": "sqlite",
        "scratch": str(work) if options.get("keep") else None,
        **inner,
    }
    save_report(report, markdown(report))
    return report


def _scratch_copy(work: Path) -> None:
    """A consistent snapshot of the live database, copies of the witness files and evidence."""
    snapshot_sqlite(database_path(), work / DATABASE)
    witness = Path(settings.FAPIAO_WITNESS_FILE)
    for name, source in ((WITNESS[0], witness), (WITNESS[1], witness.with_name("audit-heads.jsonl"))):
        target = work / name
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if source.is_file():
            shutil.copyfile(source, target)
    evidence = Path(settings.FAPIAO_EVIDENCE_DIR)
    if evidence.is_dir():
        shutil.copytree(evidence, work / EVIDENCE)


def _child_environment(work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="fapiao.settings",
        FAPIAO_VAR_DIR=str(work),
        FAPIAO_DATABASE_URL=f"sqlite:///{work / DATABASE}",
        FAPIAO_EVIDENCE_DIR=str(work / EVIDENCE),
        FAPIAO_WITNESS_FILE=str(work / WITNESS[0]),
        FAPIAO_KEYS_DIR=str(settings.KEYS_DIR),
        FAPIAO_BACKUP_DIR=str(work / "backups"),
        FAPIAO_BACKUP_KEY=base64.b64encode(secrets.token_bytes(32)).decode(),  # never the live one
        FAPIAO_WRITE_BATCHING="0",
        FAPIAO_LOG_LEVEL="WARNING",
    )
    return env


# --- the child: the disaster and the way back, on the copy --------------------------------------------


def inside(work: Path, count: int) -> dict[str, Any]:
    """Run in the child process, whose settings point into ``work``: the drill itself."""
    work = work.resolve()
    live = database_path().resolve()
    if not (work / MARKER).is_file() or live.parent != work or Path(settings.VAR_DIR).resolve() != work:
        raise NotADrillCopyError(path=live)
    steps: list[dict[str, Any]] = []

    def step(name: str, began: float, ok: bool, **detail: Any) -> None:
        steps.append({"name": name, "seconds": round(time.monotonic() - began, 3), "ok": ok, **detail})

    began = time.monotonic()
    created = create_backup(allow_same_filesystem=True)
    step("backup", began, True, backup_id=created.backup.backup_id, bytes=created.bytes)

    began = time.monotonic()
    receipts = work / "receipts"
    issued = _issue(receipts, count)
    sizes = {uscc: size for uscc, size in Log.objects.values_list("merchant__uscc", "size")}
    step("invoices", began, bool(issued), issued=len(issued), receipts=len(issued))
    if not issued:
        raise DrillFailedError(reason=gettext("no merchant user could issue an invoice (number segments?)"))

    began = time.monotonic()
    connection.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{live}{suffix}").unlink(missing_ok=True)
    lost_at = time.monotonic()
    step("destroy", began, not live.exists())

    began = time.monotonic()
    restored = restore_backup(created.backup.backup_id, force=True)
    rpo: list[dict[str, Any]] = [
        {
            "log": r.log,
            "first": r.first,
            "last": r.last,
            "count": r.last - r.first + 1,
            "incident": r.incident,
        }
        for r in restored.lost
    ]
    step("restore", began, True, lost_entries=sum(r["count"] for r in rpo))

    began = time.monotonic()
    before = _ledger_verify()
    step("verify_after_restore", began, before["ok"], errors=before["errors"], findings=before["findings"])

    began = time.monotonic()
    replayed = replay_receipts([receipts])
    step(
        "replay",
        began,
        replayed.ok,
        appended=replayed.appended,
        refused=len(replayed.refused),
        held=sum(len(r.held) for r in replayed.logs),
    )

    began = time.monotonic()
    after = _ledger_verify()
    step("verify_after_replay", began, after["ok"], errors=after["errors"], findings=after["findings"])
    rto = time.monotonic() - lost_at

    audit = verify_audit()
    audit_findings = sorted({str(f.code) for f in audit.findings() if f.is_error})
    brought_back = {r.log: r.appended for r in replayed.logs}
    closed = all(
        set(range(r["first"], r["last"] + 1)) <= set(brought_back.get(r["log"], [])) for r in rpo
    ) and all(Log.objects.filter(merchant__uscc=u, size__gte=s).exists() for u, s in sizes.items())
    return {
        "ok": bool(after["ok"] and replayed.ok and closed),
        "backup_id": created.backup.backup_id,
        "invoices_after_backup": len(issued),
        "rto_seconds": round(rto, 3),
        # per log: entries lost (the shape the 备份与演练 page reads); the ranges beside it
        "rpo": {r["log"]: r["count"] for r in rpo},
        "rpo_entries": sum(r["count"] for r in rpo),
        "rpo_ranges": rpo,
        "replay": {
            "appended": replayed.appended,
            "refused": [r.__dict__ for r in replayed.refused],
            "logs": [r.to_json() for r in replayed.logs],
            "closed": closed,
        },
        "verify_after_restore": before,
        "verify_after_replay": after,
        "audit_after_replay": {"ok": audit.ok, "errors": audit.errors, "findings": audit_findings},
        "steps": steps,
    }


def _issue(receipts: Path, count: int) -> list[dict[str, Any]]:
    """``count`` invoices, shared among up to two merchants; each receipt kept as a merchant would."""
    issuers: list[User] = []
    seen: set[int] = set()
    users = User.objects.filter(
        is_active=True, role__in=[Role.CLERK, Role.MERCHANT_ADMIN], merchant__isnull=False
    ).select_related("merchant")
    for user in users.order_by("merchant_id", "pk"):
        if user.merchant_id is not None and user.merchant_id not in seen and len(issuers) < 2:
            seen.add(user.merchant_id)
            issuers.append(user)
    issued: list[dict[str, Any]] = []
    for number in range(count):
        for _attempt in range(len(issuers)):
            if not issuers:
                break
            user = issuers[number % len(issuers)]
            payload = json.loads(json.dumps(DRILL_INVOICE))
            if number % 3 == 1:  # sealed buyer fields: they come back awaiting the merchant
                payload["buyer"]["address"] = "北京市海淀区演练路1号"
            try:
                result = issue_invoice(user=user, payload=payload)
            except FapiaoError:
                issuers.remove(user)  # no number segment this year, say
                continue
            receipt = result.body["receipt"]
            folder = receipts / str(receipt["log"])
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            (folder / f"{int(receipt['index']):09d}.json").write_text(json.dumps(receipt, ensure_ascii=False))
            issued.append({"log": receipt["log"], "index": receipt["index"], "number": result.body["number"]})
            break
    return issued


def _ledger_verify() -> dict[str, Any]:
    report = verify_ledger(workers=0)
    codes = sorted(
        {
            f"{f.code}/{f.variant}" if f.variant else str(f.code)
            for f in report.all_findings()
            if f.severity.name == "ERROR"
        }
    )
    return {"ok": report.ok, "errors": report.errors, "findings": codes}


# --- the Markdown report --------------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    """The report for the 应急预案 records, in the active language."""
    verdict = gettext("passed") if report.get("ok") else gettext("FAILED")
    replay, audit = report["replay"], report["audit_after_replay"]
    lines = [
        gettext("# Drill {scenario} — {id}").format(scenario=report["scenario"], id=report["id"]),
        "",
        gettext("- Result: **{verdict}**").format(verdict=verdict),
        gettext("- Started {started}, finished {finished}; backup {backup}").format(
            started=report["started_at"], finished=report["finished_at"], backup=report.get("backup_id")
        ),
        gettext(
            "- RTO: **{seconds} s** (from the loss of the database until the ledger verified clean)"
        ).format(seconds=report.get("rto_seconds")),
        gettext("- RPO: **{entries}** entries lost by the restore").format(entries=report["rpo_entries"]),
    ]
    lost_line = gettext("  - log {log}: entries {first}..{last} ({count})")
    lines += [lost_line.format(**lost) for lost in report["rpo_ranges"]]
    lines.append(
        gettext("- Replay from receipts: {count} entries brought back").format(count=replay["appended"])
    )
    for log in replay["logs"]:
        line = gettext("  - log {log}: size {before} → {after}").format(
            log=log["log"], before=log["size_before"], after=log["size_after"]
        )
        if log["held"]:
            line += gettext("; {count} receipts held beyond a gap").format(count=len(log["held"]))
        if log["awaiting_buyer"]:
            line += gettext("; awaiting the merchant's buyer fields: {numbers}").format(
                numbers=", ".join(log["awaiting_buyer"])
            )
        lines.append(line)
    refused = gettext("  - refused: {path}: {reason}")
    lines += [refused.format(path=r["path"], reason=r["reason"]) for r in replay["refused"]]
    if audit["ok"]:
        lines.append(gettext("- Audit trail after the replay: verifies clean"))
    else:
        lines.append(
            gettext(
                "- Audit trail after the replay: {findings} — audit records written after the backup are "
                "lost (no receipts to replay them from)"
            ).format(findings=", ".join(audit["findings"]))
        )
    lines += ["", gettext("| step | seconds | result |"), "|---|---:|---|"]
    lines += [
        f"| {item['name']} | {item['seconds']} | {'ok' if item['ok'] else '✗'} |" for item in report["steps"]
    ]
    return "\n".join(lines) + "\n"


register(
    Scenario(
        NAME,
        "backup, more invoices, the database destroyed, restore, verify, replay, verify",
        run,
        add_arguments,
        markdown,
    )
)
