"""The scratch installation every drill runs on, in one place (应急演练).

A drill never touches the live data.  :func:`run_drill` (the parent, ``fapiao drill SCENARIO``)
makes ``$FAPIAO_VAR_DIR/drills/<id>.work``: a consistent snapshot of the live SQLite database,
copies of the witness files, the evidence and the key directory (signing keys, data keys: a drill
may rotate, lose or compromise them), then runs ``fapiao drill SCENARIO --inside WORK`` in a child
process whose every path (``FAPIAO_VAR_DIR``, database, evidence, witness, keys, backups, backup
key) points into that folder.  The child (:func:`check_inside` first) provokes the failure for
real, recovers with the commands the emergency plan names (:func:`command` runs them as the
person on call would) and prints its result; the parent adds the id and times, saves the report
(``fapiao-drill/1``, read by the 备份与演练 page) and removes the folder unless ``--keep``.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.utils import timezone
from django.utils.translation import gettext

from fapiao.accounts.choices import Role
from fapiao.accounts.models import User
from fapiao.accounts.tokens import create_token
from fapiao.audit.models import AuditRecord
from fapiao.core.canonical import utc_stamp
from fapiao.core.errors import ConflictError, FapiaoError
from fapiao.invoices.models import Invoice
from fapiao.invoices.services import issue_invoice
from fapiao.ledger.incidents import unresolved
from fapiao.ledger.models import Log
from fapiao.ops.backup.service import DATABASE, EVIDENCE, WITNESS, database_path, snapshot_sqlite
from fapiao.ops.drills import FORMAT, drills_dir, new_id, save_report
from fapiao.platform import datakeys

MARKER = ".fapiao-drill"
KEYS = "keys"
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
SEALED_ADDRESS = "北京市海淀区演练路1号"


class DrillFailedError(ConflictError):
    """The drill could not be run: {reason}"""

    code = "drill_failed"


class DrillNeedsSqliteError(ConflictError):
    """The {scenario} drill runs on SQLite; on {vendor}, rehearse on a staging cluster by the plan's commands (docs/operations/emergency-plan.md)."""  # noqa: E501

    code = "drill_needs_sqlite"


class NotADrillCopyError(ConflictError):
    """Refused: {path} is not a drill's scratch copy. A drill destroys only the copy it made itself."""

    code = "not_a_drill_copy"


def add_arguments(parser: Any, *, invoices: int = 4) -> None:
    """The options every drill takes: ``--invoices``, ``--keep`` and the child's ``--inside``."""
    parser.add_argument(
        "--invoices", type=int, default=invoices, help="invoices the drill issues on its scratch copy"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch copy (drills/<id>.work)")
    parser.add_argument("--inside", help=argparse.SUPPRESS, default=None)  # the child process


# --- the parent: a scratch copy, the child, the report ------------------------------------------------


def run_drill(
    name: str,
    options: dict[str, Any],
    inside: Callable[[Path, int], dict[str, Any]],
    markdown: Callable[[dict[str, Any]], str],
    *,
    default_invoices: int = 4,
) -> dict[str, Any]:
    """``fapiao drill NAME``: in the parent, the scratch copy, the child and the saved report; in the
    child (``--inside``), ``inside(work, invoices)`` — the drill itself."""
    if connection.vendor != "sqlite":
        raise DrillNeedsSqliteError(scenario=name, vendor=connection.vendor)
    count = int(options.get("invoices") or default_invoices)
    if not 1 <= count <= 1000:
        raise DrillFailedError(reason=gettext("--invoices takes 1 to 1000"))
    if options.get("inside"):
        work = check_inside(Path(options["inside"]))
        return inside(work, count)
    started = timezone.now()
    drill_id = new_id(name, started)
    work = drills_dir() / f"{drill_id}.work"
    work.mkdir(parents=True, mode=0o700)
    try:
        (work / MARKER).write_text(drill_id + "\n")
        scratch_copy(work)
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "fapiao.cli",
                "drill",
                name,
                "--inside",
                str(work),
                "--invoices",
                str(count),
            ],
            env=child_environment(work),
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
        "scenario": name,
        "started_at": utc_stamp(started),
        "finished_at": utc_stamp(timezone.now()),
        "engine": "sqlite",
        "scratch": str(work) if options.get("keep") else None,
        **inner,
    }
    save_report(report, markdown(report))
    return report


def scratch_copy(work: Path) -> None:
    """A consistent snapshot of the live database; copies of the witness files, evidence and keys."""
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
    keys = work / KEYS
    keys.mkdir(mode=0o700)
    live_keys = Path(settings.KEYS_DIR)
    if live_keys.is_dir():
        for source in live_keys.iterdir():
            if source.is_file() and not source.name.startswith(".") and source.name != "backup-key":
                shutil.copy2(source, keys / source.name)
    if datakeys.from_environment():  # the scratch keeps its data keys in a file it may lose
        fd = os.open(keys / datakeys.FILE_NAME, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(str(settings.FAPIAO_DATA_KEYS))
    configured = settings.FAPIAO_SIGNING_KEY_FILE
    if configured and Path(configured).is_file():
        shutil.copy2(configured, keys / "configured-signing-key.pem")


def child_environment(work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop(datakeys.ENV_NAME, None)
    env.pop("FAPIAO_SIGNING_KEY_FILE", None)
    if (work / KEYS / "configured-signing-key.pem").is_file():
        env["FAPIAO_SIGNING_KEY_FILE"] = str(work / KEYS / "configured-signing-key.pem")
    hosts = {h.strip() for h in env.get("FAPIAO_ALLOWED_HOSTS", "").split(",") if h.strip()}
    env.update(
        DJANGO_SETTINGS_MODULE="fapiao.settings",
        FAPIAO_VAR_DIR=str(work),
        FAPIAO_DATABASE_URL=f"sqlite:///{work / DATABASE}",
        FAPIAO_EVIDENCE_DIR=str(work / EVIDENCE),
        FAPIAO_WITNESS_FILE=str(work / WITNESS[0]),
        FAPIAO_KEYS_DIR=str(work / KEYS),
        FAPIAO_BACKUP_DIR=str(work / "backups"),
        FAPIAO_BACKUP_KEY=base64.b64encode(secrets.token_bytes(32)).decode(),  # never the live one
        FAPIAO_WRITE_BATCHING="0",
        FAPIAO_LOG_LEVEL="WARNING",
        FAPIAO_ALLOWED_HOSTS=",".join(sorted(hosts | {"127.0.0.1", "localhost", "testserver"})),
    )
    return env


# --- the child ------------------------------------------------------------------------------------


def check_inside(work: Path) -> Path:
    """Refuse unless this process's settings point into a drill's scratch folder."""
    work = work.resolve()
    live = database_path().resolve()
    if (
        not (work / MARKER).is_file()
        or live.parent != work
        or Path(settings.VAR_DIR).resolve() != work
        or Path(settings.KEYS_DIR).resolve() != work / KEYS
    ):
        raise NotADrillCopyError(path=live)
    return work


@dataclass
class Ran:
    """One command as the person on call runs it: its words, exit status and output."""

    words: list[str]
    exit: int
    out: str
    err: str
    seconds: float = 0.0

    def json(self) -> Any:
        return json.loads(self.out[self.out.index("{") if "{" in self.out else 0 :] or "null")


def command(*words: str) -> Ran:
    """``fapiao WORDS…`` in this (the child's) process; the exit status as the shell would see it."""
    out, err = io.StringIO(), io.StringIO()
    status = 0
    began = time.monotonic()
    try:
        call_command(*words, stdout=out, stderr=err)
    except CommandError as error:
        err.write(str(error))
        status = int(getattr(error, "returncode", 1) or 1)
    except SystemExit as leaving:
        status = leaving.code if isinstance(leaving.code, int) else 1
    except Exception as error:  # what the shell sees: a failure, exit 1
        err.write(f"{type(error).__name__}: {error}")
        status = 1
    return Ran(list(words), status, out.getvalue(), err.getvalue(), round(time.monotonic() - began, 3))


@dataclass
class Record:
    """What the child hands back: each step with its time, and each check the plan names."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    began: float = field(default_factory=time.monotonic)
    work: Path | None = None  # shown as a relative path in the report
    gaps: list[str] = field(default_factory=list)  # what the drill found the product cannot yet do

    def step(self, name: str, began: float, ok: bool, **detail: Any) -> bool:
        self.steps.append({"name": name, "seconds": round(time.monotonic() - began, 3), "ok": ok, **detail})
        return ok

    def check(self, ran: Ran, *, expect: int = 0, when: str = "after") -> bool:
        """A command of the plan and whether it answered as it should (``expect``: its exit status)."""
        ok = ran.exit == expect
        words = " ".join(ran.words)
        if self.work is not None:
            words = words.replace(f"{self.work}/", "")
        self.checks.append(
            {
                "command": f"fapiao {words}",
                "exit": ran.exit,
                "expect": expect,
                "seconds": ran.seconds,
                **({} if ok else {"output": (ran.err or ran.out)[-600:]}),
                "when": when,
                "ok": ok,
            }
        )
        return ok

    def result(
        self, *, ok: bool, rto_seconds: float | None, rpo: dict[str, int] | None = None, **extra: Any
    ) -> dict[str, Any]:
        passed = ok and all(s["ok"] for s in self.steps) and all(c["ok"] for c in self.checks)
        return {
            "ok": passed,
            "rto_seconds": None if rto_seconds is None else round(rto_seconds, 3),
            "rpo": rpo or {},
            "rpo_entries": sum((rpo or {}).values()),
            "steps": self.steps,
            "checks": self.checks,
            "known_gaps": self.gaps,
            **extra,
        }


def ledger_verify(*extra: str) -> Ran:
    return command("ledger", "verify", "--workers", "0", "--json", *extra)


def audit_verify() -> Ran:
    return command("audit", "verify", "--json")


def audit_after_restore(record: Record) -> dict[str, Any]:
    """``fapiao audit verify`` after a restore: clean, since the restore re-based the audit witness at
    the restored heads; and the audit ranges the restore recorded as lost (``log:first-last``)."""
    ran = audit_verify()
    record.check(ran, when="after the restore (the audit witness re-based)")
    restore = AuditRecord.objects.filter(action="backup.restore").order_by("-at").first()
    after = (restore.after or {}) if restore is not None else {}
    return {"findings": verify_findings(ran), "lost": list(after.get("audit_lost") or [])}


def verify_findings(ran: Ran) -> list[str]:
    """The error codes (``code/variant``) of a ``ledger verify --json`` or ``audit verify --json``."""
    try:
        document = ran.json()
    except ValueError:
        return ["unreadable"]
    codes: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "code" in node and node.get("severity", "error") in {"error", "ERROR"}:
                variant = node.get("variant")
                codes.add(f"{node['code']}/{variant}" if variant else str(node["code"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    return sorted(codes)


def issuers() -> list[User]:
    """Up to two merchants' first active clerk or merchant admin: who issues the drill's invoices."""
    chosen: list[User] = []
    seen: set[int] = set()
    users = User.objects.filter(
        is_active=True, role__in=[Role.CLERK, Role.MERCHANT_ADMIN], merchant__isnull=False
    ).select_related("merchant")
    for user in users.order_by("merchant_id", "pk"):
        if user.merchant_id is not None and user.merchant_id not in seen and len(chosen) < 2:
            seen.add(user.merchant_id)
            chosen.append(user)
    return chosen


def issue_invoices(receipts: Path, count: int, *, sealed_every: int = 3) -> list[dict[str, Any]]:
    """``count`` invoices, shared among up to two merchants; each receipt kept as a merchant would
    (``receipts/<log>/<index>.json``).  Every ``sealed_every``-th (from the second) carries a sealed
    buyer address."""
    who = issuers()
    issued: list[dict[str, Any]] = []
    for number in range(count):
        for _attempt in range(len(who)):
            if not who:
                break
            user = who[number % len(who)]
            payload = json.loads(json.dumps(DRILL_INVOICE))
            if sealed_every and number % sealed_every == 1:
                payload["buyer"]["address"] = SEALED_ADDRESS
            try:
                result = issue_invoice(user=user, payload=payload)
            except FapiaoError:
                who.remove(user)  # no number segment this year, say
                continue
            receipt = result.body["receipt"]
            folder = receipts / str(receipt["log"])
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = folder / f"{int(receipt['index']):09d}.json"
            path.write_text(json.dumps(receipt, ensure_ascii=False), encoding="utf-8")
            issued.append(
                {
                    "log": receipt["log"],
                    "index": receipt["index"],
                    "number": result.body["number"],
                    "user": user.username,
                    "receipt": str(path),
                }
            )
            break
    if not issued:
        raise DrillFailedError(reason=gettext("no merchant user could issue an invoice (number segments?)"))
    return issued


# --- the Markdown report --------------------------------------------------------------------------


def markdown(report: dict[str, Any], *, lines: list[str] | None = None) -> str:
    """The report for the 应急预案 records, in the active language: the verdict, RTO and RPO, the
    drill's own ``lines``, every check the plan names with its exit status, every step."""
    verdict = gettext("passed") if report.get("ok") else gettext("FAILED")
    text = [
        gettext("# Drill {scenario} — {id}").format(scenario=report["scenario"], id=report["id"]),
        "",
        gettext("- Result: **{verdict}**").format(verdict=verdict),
        gettext("- Started {started}, finished {finished}").format(
            started=report["started_at"], finished=report["finished_at"]
        ),
    ]
    if report.get("rto_seconds") is not None:
        text.append(gettext("- RTO: **{seconds} s**").format(seconds=report["rto_seconds"]))
    text.append(gettext("- RPO: **{entries}** entries lost").format(entries=report.get("rpo_entries", 0)))
    text += lines or []
    for gap in report.get("known_gaps") or []:
        text.append(gettext("- Known gap: {gap}").format(gap=gap))
    if report.get("checks"):
        text += ["", gettext("| command | exit | expected |"), "|---|---:|---:|"]
        text += [
            f"| `{c['command']}` | {c['exit']} | {c['expect']}{'' if c['ok'] else ' ✗'} |"
            for c in report["checks"]
        ]
    text += ["", gettext("| step | seconds | result |"), "|---|---:|---|"]
    text += [f"| {s['name']} | {s['seconds']} | {'ok' if s['ok'] else '✗'} |" for s in report["steps"]]
    return "\n".join(text) + "\n"


# --- the website, as clients see it ---------------------------------------------------------------


@dataclass
class Answer:
    status: int
    retry_after: str | None
    body: dict[str, Any]


class Api:
    """The server's HTTP interface in this process (every middleware, as a client meets it), with a
    write token of ``user``."""

    def __init__(self, user: User) -> None:
        _token, self.token = create_token(user=user, scope="write", name="drill")
        self.client = Client(raise_request_exception=False)

    def _answer(self, response: Any) -> Answer:
        try:
            body = json.loads(response.content or b"{}")
        except ValueError:
            body = {}
        return Answer(
            response.status_code, response.headers.get("Retry-After"), body if isinstance(body, dict) else {}
        )

    def readyz(self) -> Answer:
        return self._answer(self.client.get("/readyz", secure=True))

    def get(self, path: str) -> Answer:
        return self._answer(
            self.client.get(path, secure=True, headers={"Authorization": f"Bearer {self.token}"})
        )

    def issue(self, payload: dict[str, Any], key: str) -> Answer:
        response = self.client.post(
            "/api/v1/invoices",
            data=json.dumps(payload, ensure_ascii=False),
            content_type="application/json",
            secure=True,
            headers={"Authorization": f"Bearer {self.token}", "Idempotency-Key": key},
        )
        return self._answer(response)


def counts() -> dict[str, Any]:
    """Invoices and every log's size: what a refused write must leave as it was."""
    sizes = {str(u): int(s) for u, s in Log.objects.values_list("merchant__uscc", "size")}
    return {"invoices": Invoice.objects.count(), "log_sizes": dict(sorted(sizes.items()))}


AUDIT_VERIFY_PROBLEM = "fapiao audit verify"


def backup_and_verify(record: Record, *, when: str = "after") -> str:
    """``fapiao backup create``, then ``fapiao backup verify`` of the newest: the backup's id."""
    record.check(command("backup", "create"), when=when)
    listed = command("backup", "list", "--json").json().get("backups") or [{}]
    backup_id = str(listed[0].get("id"))
    record.check(command("backup", "verify", backup_id, "--json"), when=when)
    return backup_id


def resolve_incidents(record: Record, opened: list[int], note: str) -> None:
    """Every incident the drill opened, acknowledged and resolved by an operator, as the plan says."""
    operator = User.objects.filter(is_active=True, role=Role.OPERATOR).order_by("pk").first()
    if operator is None:
        return
    for incident in opened:
        record.check(command("incidents", "acknowledge", str(incident), "--user", operator.username))
        record.check(
            command("incidents", "resolve", str(incident), "--note", note, "--user", operator.username)
        )


def open_incidents() -> list[int]:
    return sorted(unresolved().values_list("pk", flat=True))
