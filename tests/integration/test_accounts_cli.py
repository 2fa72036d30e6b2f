"""`fapiao users|merchants|segments|unlock`: the same services and rules as the API."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from axes.models import AccessAttempt
from django.core.management import CommandError, call_command
from django.utils import timezone

from fapiao.accounts.models import Merchant, NumberSegment, User

pytestmark = pytest.mark.django_db
NEW_USCC = "91110000MA01XKQ2TQ"


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_users_invite_mails_a_link_and_prints_no_secret(demo):
    output = run("users", "invite", "clerk3", "--role", "clerk", "--email", "c3@x.cn", "--user", "madmin")
    assert "mailed to c3@x.cn" in output and "/accounts/welcome/" not in output
    user = User.objects.get(username="clerk3")
    assert user.merchant == demo["madmin"].merchant and not user.has_usable_password()
    assert "awaiting-password" in run("users", "list", "--user", "madmin")


def test_users_list_is_scoped(demo):
    listed = run("users", "list", "--user", "madmin")
    assert "clerk " in listed and "clerk2" not in listed and "operator" not in listed
    with pytest.raises(CommandError, match="role_forbidden"):
        run("users", "list", "--user", "clerk")


def test_users_disable_enable_and_reset(demo):
    assert "disabled" in run("users", "disable", "clerk", "--user", "madmin")
    assert not User.objects.get(username="clerk").is_active
    run("users", "enable", "clerk", "--user", "madmin")
    assert "mailed to clerk@example.com" in run("users", "reset-password", "clerk", "--user", "madmin")
    assert not User.objects.get(username="clerk").has_usable_password()
    with pytest.raises(CommandError, match="no user named 'clerk2'"):
        run("users", "disable", "clerk2", "--user", "madmin")


def test_users_bootstrap_creates_the_first_operator_only(db):
    output = run("users", "bootstrap", "root-operator")
    user = User.objects.get(username="root-operator")
    assert user.role == "operator" and not user.has_usable_password()
    assert output.strip().splitlines()[-1].startswith("http://127.0.0.1:8000/accounts/welcome/")
    with pytest.raises(CommandError, match="operator_exists"):
        run("users", "bootstrap", "second-operator")


def test_merchants_create_list_show(demo):
    assert NEW_USCC in run("merchants", "create", NEW_USCC, "北京命令行有限公司", "--user", "operator")
    assert Merchant.objects.filter(uscc=NEW_USCC).exists()
    assert NEW_USCC in run("merchants", "list", "--user", "auditor")
    shown = json.loads(run("merchants", "show", NEW_USCC, "--user", "operator"))
    assert shown["name"] == "北京命令行有限公司" and shown["segments"] == []
    with pytest.raises(CommandError, match="uscc"):
        run("merchants", "create", NEW_USCC[:-1] + "A", "坏代码", "--user", "operator")
    with pytest.raises(CommandError, match="role_forbidden"):
        run("merchants", "create", "91110000MA01XKQ2TQ", "x", "--user", "clerk")


def test_segments_allocate_refuses_an_overlap_with_a_clear_reason(demo):
    year = str(timezone.localdate().year + 1)
    taken = NumberSegment.objects.filter(merchant__uscc="91110108MA01ABCD84", year=int(year) % 100).get()
    with pytest.raises(CommandError, match="segment_overlap"):
        run(
            "segments", "allocate", "91110105MA01EFGH56", "--year", year,
            "--first", str(taken.first_serial), "--last", str(taken.first_serial + 5), "--user", "operator",
        )  # fmt: skip
    listed = run(
        "segments", "allocate", "91110105MA01EFGH56", "--year", year,
        "--first", "700000000000001", "--last", "700000000001000", "--user", "operator",
    )  # fmt: skip
    assert "700000000000001–700000000001000" in listed and "remaining 1000" in listed


def test_unlock(demo):
    AccessAttempt.objects.create(
        username="clerk",
        ip_address="10.0.0.1",
        user_agent="x",
        failures_since_start=5,
        attempt_time=timezone.now(),
    )
    with pytest.raises(CommandError, match="role_forbidden"):
        run("unlock", "clerk", "--user", "auditor")
    assert "unlocked" in run("unlock", "clerk", "--user", "operator")
    assert not AccessAttempt.objects.filter(username="clerk").exists()


def test_token_list_shows_last_use(demo, client_for):
    client_for("clerk").get("/api/v1/invoices")
    assert "last used 20" in run("token", "list", "clerk")
