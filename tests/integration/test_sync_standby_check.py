"""FAPIAO_REQUIRE_SYNC_STANDBY on a PostgreSQL without standbys: every write is refused (503
no_sync_standby, Retry-After), nothing is saved; the answer is cached only when positive.

The real cluster (two standbys, failovers) is tests/ha; here the shared test server, which has no
standby, stands in for a primary whose standbys are all gone.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from typing import Any

import pytest

from fapiao.core.errors import NoSyncStandbyError
from fapiao.invoices.models import Invoice
from fapiao.invoices.services import issue_invoice
from fapiao.platform import replication
from tests.conftest import VALID_INVOICE
from tests.faults.server import free_port, throwaway_postgres

pytestmark = pytest.mark.postgres


@pytest.fixture
def required(settings: Any) -> Any:
    settings.FAPIAO_REQUIRE_SYNC_STANDBY = True
    settings.FAPIAO_SYNC_STANDBY_CACHE_MS = 1000
    replication.forget()
    yield settings
    replication.forget()


@pytest.mark.django_db
def test_without_a_standby_nothing_is_saved(required: Any, demo: dict[str, Any]) -> None:
    before = Invoice.objects.count()
    with pytest.raises(NoSyncStandbyError):
        issue_invoice(user=demo["clerk"], payload=copy.deepcopy(VALID_INVOICE))
    assert Invoice.objects.count() == before


@pytest.mark.django_db
def test_the_api_answers_503_no_sync_standby(required: Any, client_for: Any) -> None:
    response = client_for("clerk").post(
        "/api/v1/invoices", VALID_INVOICE, content_type="application/json", headers={"Idempotency-Key": "k-1"}
    )
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response.json()["type"].endswith("/no_sync_standby")
    assert not Invoice.objects.exists()


@pytest.mark.django_db
def test_switched_off_writes_go_on(settings: Any, demo: dict[str, Any]) -> None:
    settings.FAPIAO_REQUIRE_SYNC_STANDBY = False
    assert issue_invoice(user=demo["clerk"], payload=copy.deepcopy(VALID_INVOICE)).status == 201


@pytest.mark.django_db
def test_a_positive_answer_is_cached_a_negative_one_is_not(
    required: Any, demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = [0, 1, 1]
    asked: list[int] = []

    def sync_standbys() -> int:
        asked.append(1)
        return answers[len(asked) - 1]

    monkeypatch.setattr(replication, "sync_standbys", sync_standbys)
    with pytest.raises(NoSyncStandbyError):
        issue_invoice(user=demo["clerk"], payload=copy.deepcopy(VALID_INVOICE))
    for _ in range(3):  # asked once, then trusted for FAPIAO_SYNC_STANDBY_CACHE_MS
        issue_invoice(user=demo["clerk"], payload=copy.deepcopy(VALID_INVOICE))
    assert len(asked) == 2
    required.FAPIAO_SYNC_STANDBY_CACHE_MS = 0  # every write asks
    replication.forget()
    answers.append(1)
    for _ in range(2):
        issue_invoice(user=demo["clerk"], payload=copy.deepcopy(VALID_INVOICE))
    assert len(asked) == 4


def test_every_cli_command_reads_a_multi_host_url(tmp_path: Any) -> None:
    """The first host is down: libpq goes on to the next (the server's own settings, in a subprocess)."""
    with throwaway_postgres("fapiao_multihost") as url:
        head, name = url.rsplit("/", 1)
        user_host = head.split("://", 1)[1]
        user, host = user_host.rsplit("@", 1)
        multi = f"postgresql://{user}@127.0.0.1:{free_port()},{host}/{name}?connect_timeout=2"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAPIAO_")}
        env.update(
            FAPIAO_DATABASE_URL=multi, FAPIAO_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="fapiao.settings"
        )
        done = subprocess.run(
            [sys.executable, "-m", "fapiao.cli", "migrate", "--noinput", "ledger"],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        done = subprocess.run(
            [sys.executable, "-m", "fapiao.cli", "showmigrations", "ledger"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0 and "[X] 0001_initial" in done.stdout, done.stdout + done.stderr
