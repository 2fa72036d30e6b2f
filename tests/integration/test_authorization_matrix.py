"""The authorisation matrix: every route of the URL configuration × every role × own/other merchant.

Routes are discovered, not listed: the JSON API's from django-ninja (with their HTTP methods),
pages from Django's resolver.  The expected outcomes live in ``authz_table.py``, one per row.
Each row runs in its own rolled-back transaction, so a successful write (a new user, a revoked
token, an issued invoice) does not leak into the next row.  Every successful answer to a merchant
user is also searched for the other merchant's data (its USCC, name, user, invoice number).
"""

from __future__ import annotations

import copy
import io
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from ninja.operation import PathView

from fapiao.accounts.choices import Role
from fapiao.accounts.models import ApiToken, User
from fapiao.accounts.services import create_token
from fapiao.catalogue import services as catalogue
from fapiao.catalogue.models import Batch
from fapiao.invoices.models import ImportRun, Invoice
from fapiao.invoices.services import issue_invoice
from fapiao.recovery import evidence as case_evidence
from fapiao.recovery import review as case_review
from fapiao.recovery import services as case_services
from fapiao.recovery.models import Case
from tests.conftest import VALID_INVOICE
from tests.integration.authz_table import EXCLUDED, PLAYERS, REMEDY_ROWS, ROLES, ROWS
from tests.integration.case_helpers import claim_for, complete_claim, lose_invoice, pdf_named

M1 = "91110108MA01ABCD84"  # the clerk's and madmin's merchant: "own"
M2 = "91110105MA01EFGH56"  # clerk2's merchant: "other"
NEW_USCC = "91110000MA01XKQ2TQ"
PARAM = re.compile(r"<(?:\w+:)?(\w+)>")
REGEX_GROUP = re.compile(r"\(\?P<(\w+)>([^)]*)\)")  # re_path: (?P<kind>csv|xlsx)
MERCHANT_SCOPED_PARAMS = {
    "number",
    "log",
    "uscc",
    "token_id",
    "buyer_id",
    "product_id",
    "public_id",
    "case_id",
    "evidence_id",
    "run_id",
}
USER_PARAMS = {"user_id"}
#: Routes whose body, not their path, names the object: the scope picks the body.
BODY_SCOPES = {("POST", "/api/v1/accounts/users"): {"own", "other", "staff"}}

# --- discovering the routes -------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    method: str  # "*" for a page: Django does not say which methods a view accepts
    path: str

    @property
    def is_api(self) -> bool:
        return self.method != "*"


def _path_view(callback: Callable[..., Any]) -> PathView | None:
    """The django-ninja PathView behind an API URL pattern (its view closes over it)."""
    for cell in getattr(callback, "__closure__", None) or ():
        if isinstance(cell.cell_contents, PathView):
            return cell.cell_contents
    return None


def _walk(patterns: list[Any], prefix: str) -> Iterator[tuple[str, URLPattern]]:
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, route)
        else:
            yield route, pattern


def discovered_routes() -> set[Route]:
    found: set[Route] = set()
    for route, pattern in _walk(get_resolver().url_patterns, ""):
        if any(route.startswith(prefix) for prefix in EXCLUDED):
            continue
        path = "/" + route.replace("^", "").replace("$", "").replace("\\.", ".")
        path_view = _path_view(pattern.callback)
        if path_view is None:
            found.add(Route("*", path))
            continue
        for operation in path_view.operations:
            for method in operation.methods:
                found.add(Route(method, path))
    return found


def table_routes() -> set[Route]:
    """The table's routes, pages folded to method ``*`` like the discovered ones."""
    api = {route.path for route in discovered_routes() if route.method != "*"}
    return {Route(method if path in api else "*", path) for method, path, *_rest in ROWS}


def rows_by_route() -> dict[tuple[str, str], list[tuple[str, str, int | str]]]:
    grouped: dict[tuple[str, str], list[tuple[str, str, int | str]]] = defaultdict(list)
    for method, path, role, scope, expected in ROWS:
        grouped[(method, path)].append((role, scope, expected))
    return grouped


def required_scopes(method: str, path: str) -> set[str]:
    if (method, path) in BODY_SCOPES:
        return BODY_SCOPES[(method, path)]
    params = set(PARAM.findall(REGEX_GROUP.sub("", path)))
    if params & USER_PARAMS:
        return {"own", "other", "staff"}
    if params & MERCHANT_SCOPED_PARAMS:
        return {"own", "other"}
    return {"-"}


# --- the shape of the table ---------------------------------------------------------------------------


def test_every_route_is_in_the_table():
    missing = sorted(discovered_routes() - table_routes(), key=lambda r: (r.path, r.method))
    assert not missing, "routes missing from tests/integration/authz_table.py: " + ", ".join(
        f"{route.method} {route.path}" if route.is_api else f"page {route.path}" for route in missing
    )


def test_the_table_names_no_route_that_does_not_exist():
    stale = sorted(table_routes() - discovered_routes(), key=lambda r: (r.path, r.method))
    assert not stale, "rows for routes that no longer exist: " + ", ".join(
        f"{r.method} {r.path}" for r in stale
    )


def test_every_route_has_each_role_and_scope_exactly_once():
    problems = []
    for (method, path), rows in rows_by_route().items():
        counts = Counter((role, scope) for role, scope, _expected in rows)
        wanted = {(role, scope) for role in ROLES for scope in required_scopes(method, path)}
        if set(counts) != wanted:
            missing, extra = sorted(wanted - set(counts)), sorted(set(counts) - wanted)
            problems.append(f"{method} {path}: missing {missing}, extra {extra}")
        problems += [f"{method} {path}: {key} appears {n} times" for key, n in counts.items() if n > 1]
    assert not problems, "\n".join(problems)


def test_outcomes_are_statuses_or_login():
    # 409: the role may take the action, the object's state does not allow it now (a recovery case).
    allowed = {200, 201, 204, 302, 401, 403, 404, 405, 409, 422, "login"}
    assert {row[4] for row in ROWS} <= allowed


# --- the world the rows run in ---------------------------------------------------------------------------


@dataclass
class World:
    users: dict[str, User]
    tokens: dict[str, tuple[ApiToken, str]]  # by role
    invoices: dict[str, str]  # scope → number
    targets: dict[str, User]  # scope → a user to act on
    others_token: ApiToken  # clerk2's
    entries: dict[str, dict[str, str]]  # param → scope → id of a merchant's buyer, product, batch
    cases: dict[str, CaseInWorld]  # scope → a submitted recovery case of that merchant


@dataclass(frozen=True)
class CaseInWorld:
    case_id: str
    evidence_id: str
    version: int
    claimed_number: str


def submitted_case(clerk: User, serial: int) -> CaseInWorld:
    """A case its merchant's clerk opened, gave one file and submitted."""
    today = timezone.localdate()
    number = f"{today.year % 100:02d}110{serial:015d}"
    case = case_services.open_case(user=clerk, payload=claim_for(number, today.isoformat()))
    evidence = case_evidence.add_evidence(
        user=clerk, case=case, evidence_type="contract", filename="合同.pdf", data=pdf_named(number)
    )
    case = case_services.submit_case(user=clerk, case=case, version=case.version)
    return CaseInWorld(str(case.uid), str(evidence.uid), case.version, number)


@pytest.fixture
def world(demo: dict[str, User], settings: Any) -> World:
    settings.FAPIAO_OPERATOR_TOTP = False  # the second factor has its own tests (test_second_factor.py)
    invoices = {
        "own": issue_invoice(user=demo["clerk"], payload=copy.deepcopy(VALID_INVOICE)).body["number"],
        "other": issue_invoice(user=demo["clerk2"], payload=copy.deepcopy(VALID_INVOICE)).body["number"],
    }
    target_clerk = User.objects.create(
        username="target-clerk", role=Role.CLERK, merchant=demo["clerk"].merchant, email="tc@example.com"
    )
    target_staff = User.objects.create(username="target-staff", role=Role.SUPPORT, email="ts@example.com")
    users = {role: demo[username] for role, username in PLAYERS.items()}
    tokens = {role: create_token(user=user, scope="write", name="matrix") for role, user in users.items()}
    others_token, _plaintext = create_token(user=demo["clerk2"], scope="read", name="theirs")
    owners = {"own": demo["clerk"], "other": demo["clerk2"]}
    entries = {
        "buyer_id": {
            scope: str(catalogue.save_buyer(user=user, data=catalogue.BuyerInput(name="矩阵买方")).pk)
            for scope, user in owners.items()
        },
        "product_id": {
            scope: str(
                catalogue.save_product(
                    user=user, data=catalogue.ProductInput(name="矩阵商品", tax_rate="0.06")
                ).pk
            )
            for scope, user in owners.items()
        },
        "public_id": {
            scope: str(
                Batch.objects.create(
                    merchant=user.merchant, created_by=user, filename="matrix.csv", file_sha256="0" * 64
                ).public_id
            )
            for scope, user in owners.items()
        },
        "run_id": {
            scope: ImportRun.objects.create(
                merchant=user.merchant,
                run_id=f"imp-matrix-{scope}",
                direction="out",
                state="committed",
                created_by=user,
                created_at=timezone.now(),
            ).run_id
            for scope, user in owners.items()
        },
        # An incident names no merchant in its route; none exists: the role decides before the lookup.
        "incident_id": {"-": "2147480000"},
    }
    cases = {
        "own": submitted_case(demo["clerk"], 999_999_999_990_001),
        "other": submitted_case(demo["clerk2"], 999_999_999_990_002),
    }
    return World(
        users=users,
        tokens=tokens,
        invoices=invoices,
        targets={"own": target_clerk, "other": demo["clerk2"], "staff": target_staff},
        others_token=others_token,
        entries=entries,
        cases=cases,
    )


def fill(path: str, role: str, scope: str, world: World) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "number":
            return world.invoices[scope]
        if name in {"log", "uscc"}:
            return M1 if scope == "own" else M2
        if name == "user_id":
            return str(world.targets[scope].pk)
        if name == "token_id":
            own = world.tokens["clerk" if role == "anonymous" else role][0]
            return str((own if scope == "own" else world.others_token).public_id)
        if name in world.entries:
            return world.entries[name][scope]
        if name in {"case_id", "evidence_id", "action"}:  # action: of /cases/<case_id>/act/<action>/
            return "claim" if name == "action" else str(getattr(world.cases[scope], name))
        raise AssertionError(f"teach test_authorization_matrix.fill how to fill <{name}> in {path}")

    concrete = REGEX_GROUP.sub(lambda match: match.group(2).split("|")[0], path)
    concrete = concrete.replace("<str:token>", "matrix-not-a-link-token")  # a mailed link's: unknown
    return PARAM.sub(value, concrete)


class Multipart(dict[str, Any]):
    """A multipart form body (a file upload) rather than JSON."""


def case_bodies(scope: str, world: World) -> dict[tuple[str, str], object]:
    """Valid bodies of the case routes: the case's current version, and what each action needs."""
    if scope not in world.cases:
        claim = claim_for(
            f"{timezone.localdate().year % 100:02d}110{999_999_999_990_003:015d}",
            timezone.localdate().isoformat(),
        )
        return {
            ("POST", "/api/v1/cases"): claim,
            ("POST", "/api/v1/cases/register"): {"merchant": M1, "channel": "phone", "claim": claim},
        }
    case = world.cases[scope]
    version = {"version": case.version}
    action = "/api/v1/cases/<case_id>/"
    bodies: dict[tuple[str, str], object] = {
        ("PATCH", "/api/v1/cases/<case_id>"): {
            **version,
            **claim_for(case.claimed_number, timezone.localdate().isoformat()),
        },
        ("POST", action + "reopen"): {**version, "reason": "恢复结果不对。"},
        ("POST", action + "reject"): {**version, "reason": "证据不足。"},
        ("POST", action + "return-to-review"): {**version, "reason": "无法补开。"},
        ("POST", action + "request-info"): {**version, "body": "请补充合同。", "items": ["合同"]},
        ("POST", action + "resolve"): {**version, "remedy": "restore"},
        ("POST", action + "assign"): {"assignee": "reviewer"},
        ("POST", action + "messages"): {"body": "请问进度如何？"},
        ("POST", action + "evidence"): Multipart(type="bank_statement", file=pdf_named("matrix upload")),
    }
    for name in ("submit", "resubmit", "confirm", "withdraw", "claim", "approve"):
        bodies[("POST", action + name)] = version
    return bodies


def request_data(method: str, path: str, scope: str, world: World) -> tuple[dict[str, Any], object | None]:
    """The query and JSON body a row sends: valid, so only authorisation decides the outcome."""
    next_year = timezone.localdate().year + 1
    today = timezone.localdate().isoformat()
    bodies: dict[tuple[str, str], object] = {
        ("POST", "/api/v1/invoices"): VALID_INVOICE,
        ("POST", "/api/v1/invoice-batches"): {
            "items": [{"key": f"matrix-{scope}", "invoice": VALID_INVOICE}]
        },
        ("POST", "/api/v1/invoices/<number>/red-letter"): {"full": True},
        ("POST", "/api/v1/invoices/<number>/deliveries"): {"to": "matrix@buyer.example.cn"},
        ("POST", "/api/v1/accounts/merchants"): {"uscc": NEW_USCC, "name": "北京矩阵测试有限公司"},
        ("POST", "/api/v1/accounts/merchants/<uscc>/segments"): {
            "year": next_year,
            "first_serial": 900_000_000_000_001,
            "last_serial": 900_000_000_000_100,
        },
        ("POST", "/api/v1/accounts/tokens"): {"name": "minted", "scope": "read"},
        ("POST", "/api/v1/accounts/users"): {
            "own": {"username": "new-admin", "role": "merchant_admin", "merchant": M1, "email": "a@x.cn"},
            "other": {"username": "new-admin", "role": "merchant_admin", "merchant": M2, "email": "a@x.cn"},
            "staff": {"username": "new-support", "role": "support", "email": "s@x.cn"},
        }.get(scope),
        **case_bodies(scope, world),
    }
    queries: dict[tuple[str, str], dict[str, Any]] = {
        ("GET", "/api/v1/ledger/<log>/entries"): {"start": 0, "end": 1},
        ("GET", "/api/v1/ledger/<log>/proof/inclusion"): {"index": 0},
        ("GET", "/api/v1/ledger/<log>/proof/consistency"): {"first": 1, "second": 1},
        ("GET", "/api/v1/audit/logs/<log>/proof"): {"index": 0},
        ("GET", "/api/v1/check"): {
            "number": world.invoices["own"],
            "issued_on": today,
            "total_with_tax": "1060.00",
        },
        ("GET", "/api/v1/invoice-bundle"): {"date_from": today, "date_to": today},
    }
    return queries.get((method, path), {}), bodies.get((method, path))


def clients(world: World) -> dict[str, tuple[Client, Client]]:
    """Per role: (API client with the role's token, browser signed in as the role)."""
    made = {"anonymous": (Client(), Client())}
    for role, user in world.users.items():
        browser = Client()
        browser.force_login(user)
        made[role] = (Client(headers={"Authorization": f"Bearer {world.tokens[role][1]}"}), browser)
    return made


def perform(client: Client, method: str, url: str, query: dict[str, Any], body: object | None) -> Any:
    if isinstance(body, Multipart):
        form = {key: io.BytesIO(value) if isinstance(value, bytes) else value for key, value in body.items()}
        for key, value in form.items():
            if isinstance(value, io.BytesIO):
                value.name = f"{key}.pdf"
        return client.post(url, data=form)
    if body is not None:
        return client.generic(
            method,
            url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""),
            data=json.dumps(body),
            content_type="application/json",
        )
    return getattr(client, method.lower())(url, query)


MERCHANT_PLAYERS = {"clerk", "merchant_admin"}


def leak_markers(world: World) -> list[str]:
    """What merchant 1's users must never see in a successful answer: merchant 2's data."""
    other = world.targets["other"]  # clerk2
    case = world.cases["other"]
    return [
        M2,
        other.merchant.name,  # type: ignore[union-attr]
        other.username,
        world.invoices["other"],
        case.case_id,
        case.evidence_id,
        case.claimed_number,
    ]


def outcome_matches(response: HttpResponse, expected: int | str) -> bool:
    if expected == "login":
        location = response.get("Location", "")
        return response.status_code == 302 and location.split("?")[0] == resolve_url(settings.LOGIN_URL)
    return response.status_code == expected


def describe(response: HttpResponse) -> str:
    detail = ""
    if response.get("Content-Type", "").startswith("application/problem+json"):
        detail = json.loads(response.content).get("type", "").rsplit("/", 1)[-1]
    elif response.status_code in {301, 302}:
        detail = response.get("Location", "")
    return f"{response.status_code} {detail}".strip()


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path"), sorted(rows_by_route()), ids=str)
def test_matrix(world: World, method: str, path: str):
    by_role = clients(world)
    failures = []
    for role, scope, expected in rows_by_route()[(method, path)]:
        api_client, browser = by_role[role]
        query, body = request_data(method, path, scope, world)
        url = fill(path, role, scope, world)
        with transaction.atomic():
            response = perform(api_client if path.startswith("/api/") else browser, method, url, query, body)
            transaction.set_rollback(True)
        if not outcome_matches(response, expected):
            failures.append(f"  {role:<15} {scope:<6} expected {expected}, got {describe(response)}")
        elif role in MERCHANT_PLAYERS and response.status_code == 200:
            content = b"".join(response.streaming_content) if response.streaming else response.content
            leaked = [marker for marker in leak_markers(world) if marker.encode() in content]
            if leaked:
                failures.append(f"  {role:<15} {scope:<6} shows the other merchant's {leaked}")
    assert not failures, f"{method} {path}:\n" + "\n".join(failures)


# --- remedies: what restore / re-issue may write (authz_table.REMEDY_ROWS) ----------------------------------

ATTACK_BUYER = {"name": "北京空壳贸易有限公司", "tax_id": "91110000MA01XKQ2TQ"}
ATTACK_LINE = {"name": "*咨询服务*咨询费", "quantity": "1", "unit_price": "94339622.64", "tax_rate": "0.06"}
REMEDY_BODIES: dict[str, dict[str, Any]] = {
    "remedy": {"remedy": "restore"},
    "content": {
        "remedy": "restore",
        "invoice": {
            "issued_on": "2020-01-02",
            "confirm": True,
            "kind": "ordinary",
            "buyer": ATTACK_BUYER,
            "lines": [ATTACK_LINE],
        },
    },
    "reissue_content": {
        "remedy": "reissue",
        "invoice": {"kind": "special", "buyer": ATTACK_BUYER, "lines": [dict(ATTACK_LINE, tax_rate="0.13")]},
    },
}
REMEDY_FORMS: dict[str, dict[str, str]] = {
    "remedy": {"remedy": "restore"},
    "content": {
        "remedy": "restore",
        "action": "resolve",
        "confirm": "on",
        "issued_on": "2020-01-02",
        "kind": "special",
        "buyer_name": ATTACK_BUYER["name"],
        "lines-0-name": ATTACK_LINE["name"],
        "lines-0-quantity": "1",
        "lines-0-unit_price": ATTACK_LINE["unit_price"],
        "lines-0-tax_rate": "0.06",
    },
}


def approved_case(demo: dict[str, User], claim: dict[str, Any]) -> Case:
    case = case_services.open_case(user=demo["clerk"], payload=claim)
    case = case_services.submit_case(user=demo["clerk"], case=case, version=case.version)
    case = case_review.claim_case(user=demo["reviewer"], case=case, version=case.version)
    return case_review.approve_case(user=demo["reviewer"], case=case, version=case.version)


@pytest.fixture
def remedy_cases(world: World, demo: dict[str, User]) -> dict[str, tuple[Case, dict[str, Any]]]:
    """Approved cases of merchant 1, each with the claim whose content alone may be written."""
    lost = issue_invoice(user=demo["clerk"], payload=copy.deepcopy(VALID_INVOICE)).body["number"]
    kept = lose_invoice(lost)
    claims = {
        "lost": claim_for(lost, kept["issued_on"]),
        "legacy": complete_claim("011001900111-00000042", "2025-03-05"),
        "theirs": complete_claim(world.invoices["other"], timezone.localdate().isoformat()),
    }
    return {name: (approved_case(demo, claim), claim) for name, claim in claims.items()}


def written_is_the_claim(case: Case, claim: dict[str, Any]) -> str | None:
    """None when the case wrote nothing or exactly its claim; else what is wrong."""
    case.refresh_from_db()
    written = Invoice.objects.filter(origin__in=("restored", "reissued"), origin_ref=case.acceptance_no)
    if case.state != "resolved":
        return f"nothing should be written, found {list(written)}" if written.exists() else None
    invoice = written.get()
    found = (invoice.total_with_tax, invoice.buyer_name, invoice.merchant.uscc)
    wanted = (int(claim["total_with_tax"].replace(".", "")), claim["buyer"]["name"], M1)
    if found != wanted or (case.remedy == "restore" and invoice.issued_on.isoformat() != claim["issued_on"]):
        return f"wrote {found} on {invoice.issued_on}, claimed {wanted} on {claim['issued_on']}"
    if Invoice.objects.filter(number=invoice.number).exclude(merchant=invoice.merchant).exists():
        return f"{invoice.number} is under two merchants"
    return None


@pytest.mark.django_db
def test_remedy_rows(world: World, remedy_cases: dict[str, tuple[Case, dict[str, Any]]]):
    by_role = clients(world)
    failures = []
    for surface, role, name, body, expected in REMEDY_ROWS:
        api_client, browser = by_role[role]
        case, claim = remedy_cases[name]
        with transaction.atomic():
            if surface == "api":
                url = f"/api/v1/cases/{case.uid}/resolve"
                response = perform(
                    api_client, "POST", url, {}, {"version": case.version, **REMEDY_BODIES[body]}
                )
            else:
                form = {"version": str(case.version), **REMEDY_FORMS[body]}
                response = browser.post(f"/cases/{case.uid}/resolve/", form)
            wrong = written_is_the_claim(case, claim)
            transaction.set_rollback(True)
        where = f"  {surface:<4} {role:<15} {name:<6} {body:<15}"
        if not outcome_matches(response, expected):
            failures.append(f"{where} expected {expected}, got {describe(response)}")
        elif wrong:
            failures.append(f"{where} {wrong}")
    assert not failures, "remedies:\n" + "\n".join(failures)
