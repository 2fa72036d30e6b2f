"""Two-step sign-in (TOTP) for staff: set up, asked for at every sign-in, required for operators."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta
from io import StringIO
from itertools import islice

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


# --- guessing codes after the lockout (issue 13, finding 3) -------------------------------------------


def wrong_codes(totp: pyotp.TOTP, count: int) -> list[str]:
    """``count`` six-digit codes none of which is valid now (or in the steps either side)."""
    codes = (f"{n:06d}" for n in range(1_000_000))
    return list(islice((code for code in codes if not totp.verify(code, valid_window=1)), count))


def test_after_300_wrong_codes_the_right_code_is_refused_in_every_session(staff):
    """The attack as reported: 300 wrong codes (296 answered 429), then the right code."""
    totp = set_up(sign_in("support"))
    step_of_set_up = User.objects.get(username="support").totp_last_step
    earlier = sign_in("support")  # a second session that passed the password before the lockout
    attacker = sign_in("support")
    answers = Counter(
        attacker.post("/accounts/second-factor/", {"code": code}).status_code
        for code in wrong_codes(totp, 300)
    )
    assert answers == {200: 4, 429: 296}
    with time_machine.travel(timezone.now() + timedelta(seconds=31)):  # a fresh code, not the set-up's
        for client in (attacker, earlier):
            refused = client.post("/accounts/second-factor/", {"code": totp.now(), "next": "/invoices/"})
            assert refused.status_code == 429
            assert client.get("/invoices/").status_code == 302  # still asked for a code
    assert User.objects.get(username="support").totp_last_step == step_of_set_up  # no code was accepted
    with time_machine.travel(timezone.now() + timedelta(minutes=62)):  # the lockout has ended
        passed = attacker.post("/accounts/second-factor/", {"code": totp.now(), "next": "/invoices/"})
        assert passed.status_code == 302 and passed["Location"] == "/invoices/"


def test_signing_in_again_does_not_reset_the_count_of_wrong_codes(staff):
    """A password success must not wipe the wrong codes: else 4 guesses per sign-in, for ever."""
    totp = set_up(sign_in("support"))
    guesses = iter(wrong_codes(totp, 8))
    first = sign_in("support")
    for _attempt in range(4):
        assert first.post("/accounts/second-factor/", {"code": next(guesses)}).status_code == 200
    second = sign_in("support")  # the password is known: the attacker signs in afresh
    assert second.post("/accounts/second-factor/", {"code": next(guesses)}).status_code == 429
    with time_machine.travel(timezone.now() + timedelta(seconds=31)):
        assert second.post("/accounts/second-factor/", {"code": totp.now()}).status_code == 429
    assert Client().post("/login/", {"username": "support", "password": PASSWORD}).status_code == 429


def test_the_right_code_clears_earlier_wrong_codes(staff):
    totp = set_up(sign_in("support"))
    client = sign_in("support")
    for code in wrong_codes(totp, 3):
        client.post("/accounts/second-factor/", {"code": code})
    with time_machine.travel(timezone.now() + timedelta(seconds=31)):
        assert client.post("/accounts/second-factor/", {"code": totp.now()}).status_code == 302
    assert not AccessAttempt.objects.filter(username="support").exists()


def test_users_without_a_second_factor_are_still_reset_by_a_password_success(staff):
    for _attempt in range(3):
        Client().post("/login/", {"username": "clerk", "password": "wrong"})
    assert AccessAttempt.objects.filter(username="clerk").exists()
    sign_in("clerk")
    assert not AccessAttempt.objects.filter(username="clerk").exists()
