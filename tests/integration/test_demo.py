"""`fapiao demo`: refused in production; elsewhere it touches only what it created (issue 13, finding 8)."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from fapiao.accounts.choices import Role
from fapiao.accounts.demo import USERS, DemoInProductionError, demo_password, load_demo
from fapiao.accounts.models import Merchant, NumberSegment, User

pytestmark = pytest.mark.django_db
M1 = "91110108MA01ABCD84"
M2 = "91110105MA01EFGH56"
OWN_PASSWORD = "the operator's own long passphrase"


def run_demo() -> str:
    out = StringIO()
    call_command("demo", stdout=out)
    return out.getvalue()


def test_fapiao_demo_under_fapiao_production_exits_non_zero_and_creates_nobody(tmp_path: Path):
    """The attack as reported: `fapiao demo` on a production installation."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("FAPIAO_", "PYTEST_"))},
        "DJANGO_SETTINGS_MODULE": "fapiao.settings",
        "FAPIAO_PRODUCTION": "1",
        "FAPIAO_SECRET_KEY": "x" * 20 + "-production-secret-key-with-enough-entropy-9f8e7d6c5b4a",
        "FAPIAO_VAR_DIR": str(tmp_path),
        "FAPIAO_LOG_LEVEL": "WARNING",
    }

    def fapiao(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "fapiao.cli", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=180, check=False)

    assert fapiao("migrate", "--noinput").returncode == 0
    refused = fapiao("demo")
    assert refused.returncode != 0
    assert "FAPIAO_PRODUCTION" in refused.stderr and "Traceback" not in refused.stderr
    users = fapiao("users", "bootstrap", "ops-first")  # the installation is still empty: no demo operator
    assert users.returncode == 0, users.stderr


def test_the_demo_is_refused_in_production_in_process(settings):
    settings.PRODUCTION = True
    with pytest.raises(DemoInProductionError):
        load_demo()
    with pytest.raises(CommandError, match="FAPIAO_PRODUCTION"):
        run_demo()
    assert not User.objects.exists() and not Merchant.objects.exists()


def test_an_existing_account_with_a_demo_name_is_left_alone_and_reported(db):
    """The second half of the attack: the demo reset the password of any account named like a demo user."""
    own = User(username="operator", role=Role.OPERATOR, email="ops@example.org", last_name="钱")
    own.set_password(OWN_PASSWORD)
    own.save()
    output = run_demo()
    own.refresh_from_db()
    assert own.check_password(OWN_PASSWORD) and not own.check_password(demo_password()[0])
    assert (own.email, own.last_name) == ("ops@example.org", "钱")
    assert not own.is_superuser and not own.is_staff
    assert not own.is_demo
    line = next(line for line in output.splitlines() if line.split()[:1] == ["operator"])
    assert "left alone" in line
    created = User.objects.filter(is_demo=True)
    assert {user.username for user in created} == {name for name, *_rest in USERS} - {"operator"}
    assert all(user.check_password(demo_password()[0]) for user in created)


def test_a_merchant_with_a_demo_uscc_it_did_not_create_is_left_alone(db):
    real = Merchant.objects.create(uscc=M2, name="北京真实商户有限公司")
    output = run_demo()
    real.refresh_from_db()
    assert real.name == "北京真实商户有限公司" and not real.is_demo
    assert not NumberSegment.objects.filter(merchant=real).exists()
    assert not User.objects.filter(merchant=real).exists()  # no demo clerk with a public password in it
    assert M2 in output and "left alone" in output
    assert Merchant.objects.get(uscc=M1).is_demo


def test_a_fresh_run_creates_everything_and_a_second_run_changes_nothing(db):
    first = run_demo()
    assert all(f"  {name:<10} " in first for name, *_rest in USERS)
    assert f"password: {demo_password()[0]}" in first
    marked = set(User.objects.filter(is_demo=True).values_list("username", flat=True))
    assert marked == {name for name, *_rest in USERS}
    before = dict(User.objects.values_list("username", "password"))
    second = run_demo()
    assert "left alone" not in second
    assert dict(User.objects.values_list("username", "password")) == before
    assert NumberSegment.objects.count() == 4
