"""Shared fixtures: demo merchants and users, API clients, isolated key and witness files."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

BACKEND = os.environ.get("FAPIAO_TEST_BACKEND", "sqlite")

VALID_INVOICE: dict[str, Any] = {
    "kind": "ordinary",
    "buyer": {"name": "北京买方贸易有限公司", "tax_id": "91110000MA01XKQ2TQ"},
    "lines": [
        {
            "name": "*信息技术服务*软件开发",
            "tax_code": "3040201000000000000",
            "unit": "项",
            "quantity": "1",
            "unit_price": "1000.00",
            "tax_rate": "0.06",
        }
    ],
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`postgres` tests run in the PostgreSQL pass (`make test-postgres`), not the SQLite one."""
    if BACKEND == "postgres":
        return
    skip = pytest.mark.skip(reason="PostgreSQL only: runs in the PostgreSQL pass of `make test`")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fapiao-state")


@pytest.fixture(autouse=True)
def _isolated_files(settings: Any, state_dir: Path) -> None:
    settings.KEYS_DIR = state_dir / "keys"
    settings.FAPIAO_WITNESS_FILE = state_dir / "witness" / "heads.jsonl"
    settings.MEDIA_ROOT = state_dir / "media"
    settings.FAPIAO_EVIDENCE_DIR = state_dir / "evidence"
    # Argon2 is asserted in its own test; elsewhere a fast hasher keeps the suite quick.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def demo(db: None) -> dict[str, Any]:
    from fapiao.accounts.demo import load_demo
    from fapiao.accounts.models import User

    load_demo()
    return {user.username: user for user in User.objects.select_related("merchant")}


@pytest.fixture
def valid_invoice() -> dict[str, Any]:
    import copy

    return copy.deepcopy(VALID_INVOICE)


@pytest.fixture
def client_for(demo: dict[str, Any]) -> Callable[..., Any]:
    """A test client authenticated with a fresh API token of the named user."""
    from django.test import Client

    from fapiao.accounts.services import create_token

    def make(username: str, scope: str = "write") -> Client:
        _token, plaintext = create_token(user=demo[username], scope=scope)
        return Client(headers={"Authorization": f"Bearer {plaintext}"})

    return make
