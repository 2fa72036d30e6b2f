"""``fapiao drill operator-compromised``: an operator's account is misused; another operator locks
it out, and the audit trail shows everything it did (应急预案, scenario 9).

On the scratch copy (:mod:`fapiao.ops.drills.scratch`): three staff accounts made for the drill —
the operator whose account is taken over, the operator who responds, an auditor — then the
intruder, signed in with a session, makes itself an API token and invites a back-door operator
account.  The response is the plan's commands: ``fapiao users disable``, ``fapiao token list`` and
``fapiao token revoke`` for each token, ``fapiao users reset-password`` and ``reset-second-factor``,
the back-door account disabled, ``fapiao users list --role operator``, ``fapiao audit export
--actor`` (the trail names the token and the invitation) and ``fapiao audit verify`` exit 0.  Then
it is proven that the stolen token is refused (401), the stolen session no longer opens a staff
page, and nothing more is recorded for the intruder.  RTO: from the first command until the
token and session are refused.
"""

from __future__ import annotations

import csv
import secrets
import time
from pathlib import Path
from typing import Any

from django.test import Client

from fapiao.accounts.choices import Role
from fapiao.accounts.models import User
from fapiao.accounts.services import invite_user
from fapiao.accounts.tokens import create_token
from fapiao.ops.drills import Scenario, register, scratch

NAME = "operator-compromised"
INTRUDED, RESPONDER, AUDITOR, BACKDOOR = (
    "drill-intruded",
    "drill-responder",
    "drill-auditor",
    "drill-backdoor",
)
STAFF_PAGE = "/operations/"


def add_arguments(parser: Any) -> None:
    scratch.add_arguments(parser, invoices=1)


def run(options: dict[str, Any]) -> dict[str, Any]:
    return scratch.run_drill(NAME, options, inside, markdown, default_invoices=1)


def _staff(username: str, role: Role) -> User:
    user = User(
        username=username, role=role, email=f"{username}@drill.invalid", is_staff=role == Role.OPERATOR
    )
    user.set_password(secrets.token_urlsafe(16))
    user.save()
    return user


def _exported(work: Path, name: str) -> list[dict[str, str]]:
    out = work / name
    ran = scratch.command("audit", "export", "--user", AUDITOR, "--actor", INTRUDED, str(out))
    if ran.exit != 0 or not out.is_file():
        return []
    with out.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _actions(rows: list[dict[str, str]]) -> list[str]:
    return sorted({value for row in rows for key, value in row.items() if key and "action" in key.lower()})


def inside(work: Path, count: int) -> dict[str, Any]:
    record = scratch.Record(work=work)
    began = time.monotonic()
    intruder = _staff(INTRUDED, Role.OPERATOR)
    _staff(RESPONDER, Role.OPERATOR)
    _staff(AUDITOR, Role.AUDITOR)
    session = Client()
    session.force_login(intruder)
    opened = session.get(STAFF_PAGE, secure=True).status_code
    _token, stolen = create_token(user=intruder, scope="read", name="drill-stolen", actor=intruder)
    invite_user(actor=intruder, username=BACKDOOR, role=Role.OPERATOR, email=f"{BACKDOOR}@drill.invalid")
    api = Client(headers={"Authorization": f"Bearer {stolen}"})
    used = api.get("/api/v1/invoices", secure=True).status_code
    record.step("misuse", began, opened == 200 and used == 200, staff_page=opened, api=used)

    began = time.monotonic()
    record.check(scratch.command("users", "disable", INTRUDED, "--user", RESPONDER))
    listed = scratch.command("token", "list", INTRUDED)
    record.check(listed)
    for line in listed.out.splitlines():
        if line.strip():
            record.check(scratch.command("token", "revoke", line.split()[0]))
    record.check(scratch.command("users", "reset-password", INTRUDED, "--user", RESPONDER))
    record.check(scratch.command("users", "reset-second-factor", INTRUDED, "--user", RESPONDER))
    record.check(scratch.command("users", "disable", BACKDOOR, "--user", RESPONDER))
    record.check(scratch.command("users", "list", "--user", RESPONDER, "--role", "operator"))
    refused_api = api.get("/api/v1/invoices", secure=True).status_code
    refused_page = session.get(STAFF_PAGE, secure=True).status_code
    rto = time.monotonic() - began
    record.step(
        "locked_out",
        began,
        refused_api == 401 and refused_page != 200,
        api=refused_api,
        staff_page=refused_page,
    )

    began = time.monotonic()
    trail = _exported(work, "intruder-actions.csv")
    actions = _actions(trail)
    record.step("audit_trail", began, len(trail) >= 2, records=len(trail), actions=actions)
    record.check(scratch.audit_verify())
    disabled = (
        not User.objects.get(username=INTRUDED).is_active
        and not User.objects.get(username=BACKDOOR).is_active
    )
    api.get("/api/v1/invoices", secure=True)
    session.get(STAFF_PAGE, secure=True)
    later = _exported(work, "intruder-actions-later.csv")
    record.step("nothing_more", began, disabled and len(later) == len(trail), records_later=len(later))
    return record.result(ok=True, rto_seconds=rto, intruder_actions=actions)


def markdown(report: dict[str, Any]) -> str:
    return scratch.markdown(report)


register(
    Scenario(
        NAME,
        "an operator account misused: disabled, tokens revoked, sessions ended; the audit trail shows it all",
        run,
        add_arguments,
        markdown,
    )
)
