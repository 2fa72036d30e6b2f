"""Schemathesis over every operation of /api/v1/openapi.json, in process through the WSGI app, on the
test database (SQLite here, PostgreSQL in `make test-postgres`): whatever it sends, the answer is no
server error, a status the document lists for that operation, the media type it lists for that
status and a body its schema accepts.

Two tests: every operation with a token of each demo role (and with none), through schemathesis'
phases (the document's examples, boundary and negative values, random values); and the stateful
walk through the document's links (open a case → act on it, issue an invoice → fetch, red-letter,
receipt), each step sent as the role that would take it, sometimes as another.  Both are bounded
(derandomized; 25 examples an operation after the examples and boundary cases, 80 walks of 10
steps): about 45 s on a quiet two-core machine, so about 1.5 minutes for both passes of `make test`.
"""

from __future__ import annotations

import copy
import itertools
import random
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase
from schemathesis.generation.stateful.state_machine import normalize_name

from fapiao.accounts.services import create_token
from fapiao.accounts.tokens import forget_cached_tokens
from fapiao.wsgi import application
from tests.conftest import BACKEND

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

ROLES = ("clerk", "madmin", "support", "reviewer", "auditor", "operator")
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
]
#: Who takes each step of a walk (by operationId); the merchant's clerk takes every other.
ACTOR = {
    **{
        f"fapiao_recovery_api_{name}": "reviewer"
        for name in ("claim", "release", "request_info", "approve", "reject", "resolve", "assign")
    },
    **{f"fapiao_audit_api_{name}": "auditor" for name in ("search", "logs", "proof")},
    **{
        f"fapiao_accounts_api_{name}": "madmin"
        for name in ("list_users", "invite_user", "get_user", "disable_user", "enable_user", "reset_password")
    },
    **{
        f"fapiao_accounts_api_{name}": "operator"
        for name in (
            "unlock_user",
            "reset_second_factor",
            "list_merchants",
            "create_merchant",
            "get_merchant",
            "allocate_segment",
        )
    },
}
SOMEONE_ELSE = 0.2  # the share of steps sent as a random role instead
FROM_EXAMPLE = 0.5  # the share of steps with a documented example that send it


def documented_example(operation: dict[str, Any]) -> dict[str, Any] | None:
    content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    example = content.get("example")
    return copy.deepcopy(example) if isinstance(example, dict) else None


schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)
schema.config.checks.update(included_check_names=CHECKS)
schema.config.phases.update(phases=["examples", "coverage", "fuzzing", "stateful"])

BOUNDED = hypothesis.settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(autouse=True)
def _one_connection() -> Iterator[None]:
    """Requests go through the real WSGI handler, whose request signals would close the test's
    connection (and its transaction) as Django's own test client prevents."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


# One parameter, the database, names each test after its operation and the backend it ran on.
@pytest.fixture(params=[BACKEND])
def callers(demo: dict[str, Any]) -> Iterator[tuple[str, dict[str, str]]]:
    """Each role's token in turn, and no token at all: every operation meets every caller."""
    headers = {
        role: {"Authorization": f"Bearer {create_token(user=demo[role], scope='write')[1]}"} for role in ROLES
    }
    return itertools.cycle([*headers.items(), ("anonymous", {})])


@schema.parametrize()
@BOUNDED
def test_every_operation_answers_as_documented(
    case: Any, callers: Iterator[tuple[str, dict[str, str]]]
) -> None:
    role, headers = next(callers)
    try:
        case.call_and_validate(headers=headers)
    except Exception as error:
        error.add_note(f"Sent as: {role}")
        raise


def walk_class() -> Any:
    """The state machine of the document's links, without the walks that start at an operation
    needing an id from nowhere: a random case id only ever meets a 404, and the test above sends
    those already."""
    machine = schema.as_state_machine()
    dead_ends = {
        operation.label
        for operation in (result.ok() for result in schema.get_all_operations())
        if operation.path_parameters
    }
    dropped = {normalize_name(f"RANDOM -> {label}") for label in dead_ends} & machine.root_rules
    return type(
        "Links",
        (machine,),
        {
            **dict.fromkeys(dropped),
            "root_rules": machine.root_rules - dropped,
            "_root_labels": machine._root_labels - dead_ends,
        },
    )


def test_the_linked_walks_answer_as_documented(demo: dict[str, Any]) -> None:
    tokens = {role: create_token(user=demo[role], scope="write")[1] for role in ROLES}
    followed: set[str] = set()  # operations a link led to that answered 2xx

    class Walk(walk_class()):  # type: ignore[misc]
        def setup(self) -> None:
            # Every walk starts from the same database (a walk may disable a demo user, revoke a
            # token, or on PostgreSQL break its transaction with a refused statement): each runs
            # in a savepoint rolled back at its end, so the walks' draws stay reproducible too.
            self.savepoint = transaction.atomic()
            self.savepoint.__enter__()

        def teardown(self) -> None:
            transaction.set_rollback(True)
            self.savepoint.__exit__(None, None, None)
            forget_cached_tokens()
            super().teardown()

        def before_call(self, case: Any) -> None:
            # Hypothesis seeds `random` for every example, so the choices stay reproducible.
            role = ACTOR.get(case.operation.definition.raw.get("operationId", ""), "clerk")
            if random.random() < SOMEONE_ELSE:
                role = random.choice(ROLES)
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {tokens[role]}"}
            example = documented_example(case.operation.definition.raw)
            if example is not None and random.random() < FROM_EXAMPLE:
                # Random bodies seldom pass the checksums and sums a real claim or invoice must,
                # so some steps send the document's example: then the links lead somewhere.
                linked = case.body if isinstance(case.body, dict) else {}
                case.body = {**example, **{key: linked[key] for key in ("version",) if key in linked}}

        def step(self, input: Any) -> Any:
            output = super().step(input)
            if input.transition is not None and output.response.status_code < 300:
                followed.add(input.case.operation.label)
            return output

    Walk.run(
        settings=hypothesis.settings(
            BOUNDED, max_examples=80, stateful_step_count=10, phases=[Phase.generate]
        )
    )
    # The walks did follow the links: from an opened case or an issued invoice to what comes next.
    assert any("/api/v1/cases/{case_id}" in label for label in followed), followed
    assert any("/api/v1/invoices/{number}" in label for label in followed), followed
