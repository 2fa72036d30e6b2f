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
witness files, keys, backup directory and backup key) points into
``$FAPIAO_VAR_DIR/drills/<id>.work``, made from a consistent snapshot of the live database
(:mod:`fapiao.ops.drills.scratch`).  The child refuses to destroy a database outside that folder.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.db import connection
from django.utils.translation import gettext

from fapiao.audit.verify import verify_audit
from fapiao.ledger.models import Log
from fapiao.ledger.verify import verify_ledger
from fapiao.ops.backup.restore import restore_backup
from fapiao.ops.backup.service import create_backup, database_path
from fapiao.ops.drills import Scenario, register, scratch
from fapiao.recovery.replay import replay_receipts

NAME = "database-lost"


def add_arguments(parser: Any) -> None:
    scratch.add_arguments(parser, invoices=6)


def run(options: dict[str, Any]) -> dict[str, Any]:
    return scratch.run_drill(NAME, options, inside, markdown, default_invoices=6)


# --- the child: the disaster and the way back, on the copy --------------------------------------------


def inside(work: Path, count: int) -> dict[str, Any]:
    """Run in the child process, whose settings point into ``work``: the drill itself."""
    live = database_path().resolve()
    steps: list[dict[str, Any]] = []

    def step(name: str, began: float, ok: bool, **detail: Any) -> None:
        steps.append({"name": name, "seconds": round(time.monotonic() - began, 3), "ok": ok, **detail})

    began = time.monotonic()
    created = create_backup(allow_same_filesystem=True)
    step("backup", began, True, backup_id=created.backup.backup_id, bytes=created.bytes)

    began = time.monotonic()
    receipts = work / "receipts"
    issued = scratch.issue_invoices(receipts, count)
    sizes = {uscc: size for uscc, size in Log.objects.values_list("merchant__uscc", "size")}
    step("invoices", began, bool(issued), issued=len(issued), receipts=len(issued))

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
        "audit_after_replay": {
            "ok": audit.ok,
            "errors": audit.errors,
            "findings": audit_findings,
            # the audit records written after the backup: lost for good, the audit witness re-based
            "lost": [{"log": r.log, "first": r.first, "last": r.last} for r in restored.audit_lost],
        },
        "steps": steps,
    }


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
    audit_lost = gettext("  - audit log {log}: records {first}..{last} lost (the audit witness re-based)")
    lines += [audit_lost.format(**lost) for lost in audit.get("lost", [])]
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
