"""Two-step sign-in (TOTP) for staff: set up, asked for at every sign-in, required for operators."""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO

import pyotp
import pytest
import time_machine
from axes.models import AccessAttempt
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from fapiao.accounts import second_factor
from fapiao.accounts.models import User

pytestmark = pytest.mark.django_db
PASSWORD = "a long staff passphrase"


def sign_in(username: str) -> Client:
    client = Client(headers={"Accept-Language": "en"})
    response = client.post("/login/", {"username": username, "password": PASSWORD})
    assert response.status_code == 302, response.content
    return client


@pytest.fixture
def staff(demo: dict[str, User]) -> dict[str, User]:
    for name in ("support", "operator", "auditor", "clerk"):
        demo[name].set_password(PASSWORD)
        demo[name].save()
    return demo


def set_up(client: Client) -> pyotp.TOTP:
    page = client.get("/accounts/second-factor/setup/").content.decode()
    secret = re.search(r'<code class="secret">([A-Z2-7 ]+)</code>', page).group(1).replace(" ", "")  # type: ignore[union-attr]
    totp = pyotp.TOTP(secret)
    response = client.post("/accounts/second-factor/setup/", {"code": totp.now(), "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    return totp


def test_a_staff_member_sets_it_up_and_is_asked_at_the_next_sign_in(staff):
    totp = set_up(sign_in("support"))
    user = User.objects.get(username="support")
    assert user.totp_confirmed_at is not None
    client = sign_in("support")
    asked = client.get("/invoices/")
    assert asked.status_code == 302 and asked["Location"].startswith("/accounts/second-factor/?next=")
    api = client.get("/api/v1/invoices")
    assert api.status_code == 403 and api.json()["type"].endswith("second_factor_required")
    with time_machine.travel(timezone.now() + timedelta(seconds=31)):  # a fresh code, not the set-up's
        passed = client.post("/accounts/second-factor/", {"code": totp.now(), "next": "/invoices/"})
        assert passed.status_code == 302 and passed["Location"] == "/invoices/"
        assert client.get("/invoices/").status_code == 200
        assert client.get("/api/v1/invoices").status_code == 200


def test_a_code_is_accepted_only_once(staff):
    totp = set_up(sign_in("support"))
    client = sign_in("support")
    response = client.post("/accounts/second-factor/", {"code": totp.now()})  # the set-up's code again
    assert response.status_code == 200 and 'aria-invalid="true"' in response.content.decode()
    assert client.get("/invoices/").status_code == 302


def test_wrong_codes_count_as_failed_sign_ins_and_lock_out(staff):
    set_up(sign_in("support"))
    client = sign_in("support")
    for _attempt in range(5):
        client.post("/accounts/second-factor/", {"code": "000000"})
    assert AccessAttempt.objects.get(username="support").failures_since_start >= 5
    assert Client().post("/login/", {"username": "support", "password": PASSWORD}).status_code == 429


def test_operators_must_set_it_up_where_required(staff, settings):
    settings.FAPIAO_OPERATOR_TOTP = True
    client = sign_in("operator")
    response = client.get("/accounts/users/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/second-factor/setup/")
    assert client.get("/api/v1/accounts/users").status_code == 403
    set_up(client)
    assert client.get("/accounts/users/").status_code == 200


def test_operators_are_not_asked_in_demo_mode_unless_they_set_it_up(staff, settings):
    settings.FAPIAO_OPERATOR_TOTP = False
    assert sign_in("operator").get("/accounts/users/").status_code == 200


def test_merchant_users_have_no_second_factor(staff):
    assert sign_in("clerk").get("/accounts/second-factor/setup/").status_code == 403


def test_the_secret_is_encrypted_at_rest(staff):
    client = sign_in("support")
    page = client.get("/accounts/second-factor/setup/").content.decode()
    secret = re.search(r'<code class="secret">([A-Z2-7 ]+)</code>', page).group(1).replace(" ", "")  # type: ignore[union-attr]
    with connection.cursor() as cursor:
        cursor.execute("SELECT totp_secret FROM accounts_user WHERE username = %s", ["support"])
        stored = bytes(cursor.fetchone()[0])
    assert secret.encode() not in stored and len(stored) > len(secret)
    assert second_factor.secret_of(User.objects.get(username="support")) == secret


def test_an_operator_resets_a_lost_second_factor(staff, client_for):
    set_up(sign_in("support"))
    support = User.objects.get(username="support")
    assert (
        client_for("madmin").post(f"/api/v1/accounts/users/{support.pk}/reset-second-factor").status_code
        == 404
    )
    assert (
        client_for("auditor").post(f"/api/v1/accounts/users/{support.pk}/reset-second-factor").status_code
        == 403
    )
    response = client_for("operator").post(f"/api/v1/accounts/users/{support.pk}/reset-second-factor")
    assert response.status_code == 200 and response.json()["second_factor"] is False
    assert sign_in("support").get("/invoices/").status_code == 200  # not asked any more


def test_reset_on_the_command_line(staff):
    set_up(sign_in("auditor"))
    out = StringIO()
    call_command("users", "reset-second-factor", "auditor", "--user", "operator", stdout=out)
    assert "again" in out.getvalue()
    assert User.objects.get(username="auditor").totp_confirmed_at is None
