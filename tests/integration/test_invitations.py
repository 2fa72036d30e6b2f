"""Invitations: nobody is handed a password; the invited person chooses theirs through a single-use
mailed link; an operator creates a merchant's first administrator only (issue 13, finding 6)."""

from __future__ import annotations

import json
import re
import threading
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from fapiao import cli
from fapiao.accounts import onboarding, services
from fapiao.accounts.invitations import token_digest
from fapiao.accounts.models import ApiToken, Invitation, Merchant, User
from fapiao.audit.models import AuditRecord

# Mails go out after commit (transaction.on_commit): each test commits for real.
pytestmark = pytest.mark.django_db(transaction=True)

M1 = "91110108MA01ABCD84"
M2 = "91110105MA01EFGH56"
NEW_USCC = "91110000MA01XKQ2TQ"
RESIDENT_ID = "11010519491231002X"
GOOD_PASSWORD = "a long and private passphrase"
LINK = re.compile(r"(https?://\S+?)/accounts/welcome/([A-Za-z0-9_-]{20,})/")


def post(client: Client, path: str, body: object | None = None) -> Any:
    return client.post(path, data=json.dumps(body or {}), content_type="application/json")


def links_mailed_to(address: str) -> list[str]:
    return [match.group(2) for m in mail.outbox if address in m.to for match in LINK.finditer(m.body)]


def can_sign_in(username: str, password: str) -> bool:
    return Client().post("/login/", {"username": username, "password": password}).status_code == 302


def invite(client: Client, **body: str) -> Any:
    return post(client, "/api/v1/accounts/users", body)


@pytest.fixture
def new_merchant(demo: dict[str, User]) -> Merchant:
    return onboarding.create_merchant(actor=demo["operator"], uscc=NEW_USCC, name="北京新开商户有限公司")


# --- the attack ------------------------------------------------------------------------------------------


def test_an_operator_cannot_invite_themself_into_a_merchant_and_reveal_an_id_number(
    client_for, demo, valid_invoice
):
    """The attack as reported: an operator invites a merchant_admin into merchant A, receives a
    one-time password, signs in and reveals a full ID number.  Each step now fails."""
    valid_invoice["buyer"] = {"name": "张三", "tax_id": RESIDENT_ID}
    number = post(client_for("clerk"), "/api/v1/invoices", valid_invoice).json()["number"]
    operator = client_for("operator")
    for uscc in (M1, M2):  # M2 never had an administrator, but it has a clerk and data
        answer = invite(
            operator, username="ops-inside", role="merchant_admin", merchant=uscc, email="ops@x.cn"
        )
        assert answer.status_code == 403 and answer.json()["type"].endswith("first_admin_only")
    assert not User.objects.filter(username="ops-inside").exists() and mail.outbox == []
    # What the attacker did next: sign in with whatever the answer held, change it, reveal.
    secret = answer.json().get("one_time_password", "")
    browser = Client()
    if browser.post("/login/", {"username": "ops-inside", "password": secret}).status_code == 302:
        browser.post(
            "/password/", {"old_password": secret, "new_password1": "x" * 20, "new_password2": "x" * 20}
        )
    revealed = browser.get(f"/api/v1/invoices/{number}", {"reveal": "true"})
    assert revealed.status_code == 401 and RESIDENT_ID.encode() not in revealed.content


def test_an_operator_resetting_a_merchant_admins_password_learns_nothing_to_sign_in_with(client_for, demo):
    answer = post(client_for("operator"), f"/api/v1/accounts/users/{demo['madmin'].pk}/reset-password")
    assert answer.status_code == 200
    body = answer.json()
    assert "one_time_password" not in body and body["invitation"]["sent_to"] == "madmin@example.com"
    (token,) = links_mailed_to("madmin@example.com")
    assert token not in answer.content.decode()
    assert not can_sign_in("madmin", "fapiao-demo-2026")  # the old password is gone too


def test_the_cli_operator_cannot_invite_into_a_merchant_with_users(demo):
    with pytest.raises(CommandError, match="first_admin_only"):
        call_command(
            "users", "invite", "ops-inside", "--role", "merchant_admin", "--merchant", M1,
            "--email", "ops@x.cn", "--user", "operator", stdout=StringIO(),
        )  # fmt: skip
    assert not User.objects.filter(username="ops-inside").exists()


def test_the_users_page_refuses_it_beside_the_merchant_field(demo):
    browser = Client(headers={"Accept-Language": "en"})
    browser.force_login(demo["operator"])
    page = browser.post(
        "/accounts/users/",
        {"username": "ops-inside", "role": "merchant_admin", "merchant": M1, "email": "ops@x.cn"},
    )
    assert page.status_code == 200
    assert 'id="f-merchant-error"' in page.content.decode() and "first administrator" in page.content.decode()
    assert not User.objects.filter(username="ops-inside").exists()


# --- a merchant's first administrator ----------------------------------------------------------------------


def test_an_operator_creates_a_new_merchants_first_admin_once(client_for, new_merchant):
    operator = client_for("operator")
    first = invite(
        operator, username="first-admin", role="merchant_admin", merchant=NEW_USCC, email="li@new.cn"
    )
    assert first.status_code == 201, first.content
    body = first.json()
    assert body["user"]["awaiting_password"] is True and "one_time_password" not in body
    assert body["invitation"]["state"] == "pending" and body["invitation"]["sent_to"] == "li@new.cn"
    (token,) = links_mailed_to("li@new.cn")
    assert token not in first.content.decode()
    second = invite(
        operator, username="second-admin", role="merchant_admin", merchant=NEW_USCC, email="a@b.cn"
    )
    assert second.status_code == 403 and second.json()["type"].endswith("first_admin_only")


@pytest.mark.postgres
def test_two_operators_at_once_create_one_first_admin(demo, new_merchant):
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def worker(name: str) -> None:
        try:
            barrier.wait()
            services.invite_user(
                actor=User.objects.get(username="operator"),
                username=name,
                role="merchant_admin",
                merchant=Merchant.objects.get(uscc=NEW_USCC),
                email=f"{name}@new.cn",
            )
            outcomes.append("invited")
        except services.FirstAdminOnlyError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(name,)) for name in ("admin-a", "admin-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["invited", "refused"]
    assert User.objects.filter(merchant__uscc=NEW_USCC).count() == 1


def test_the_cli_prints_a_first_admins_link_only_when_no_mail_server_is_configured(
    demo, new_merchant, settings
):
    def invite_first(name: str) -> str:
        out = StringIO()
        call_command(
            "users", "invite", name, "--role", "merchant_admin", "--merchant", NEW_USCC,
            "--email", f"{name}@new.cn", "--user", "operator", stdout=out,
        )  # fmt: skip
        return out.getvalue()

    settings.EMAIL_HOST = ""
    printed = invite_first("first-admin")
    (token,) = (match.group(2) for match in LINK.finditer(printed))
    assert mail.outbox == [] and Invitation.objects.get(user__username="first-admin").sent_to == ""
    assert Client().get(f"/accounts/welcome/{token}/").status_code == 302
    # With a mail server it is mailed, even to the first administrator: the operator sees nothing.
    Invitation.objects.filter(user__username="first-admin").delete()  # (a test shortcut: nothing
    User.objects.filter(username="first-admin").delete()  # in the product deletes users)
    settings.EMAIL_HOST = "smtp.example.cn"
    mailed = invite_first("first-admin")
    assert not LINK.search(mailed) and links_mailed_to("first-admin@new.cn")


def test_the_cli_never_prints_a_later_users_link(demo):
    out = StringIO()
    call_command(
        "users", "invite", "clerk3", "--role", "clerk", "--email", "clerk3@example.com", "--user", "madmin",
        stdout=out,
    )  # fmt: skip
    assert not LINK.search(out.getvalue()) and "mailed to clerk3@example.com" in out.getvalue()
    reset = StringIO()
    call_command("users", "reset-password", "clerk", "--user", "madmin", stdout=reset)
    assert not LINK.search(reset.getvalue()) and links_mailed_to("clerk@example.com")


# --- the merchant's administrators hear of every new account ---------------------------------------------


def test_the_merchants_admins_are_mailed_about_every_new_account(client_for, demo):
    second_admin = User.objects.create(
        username="madmin2",
        role="merchant_admin",
        merchant=demo["madmin"].merchant,
        email="madmin2@example.com",
    )
    assert (
        invite(client_for("madmin"), username="clerk3", role="clerk", email="c3@example.com").status_code
        == 201
    )
    told = [m for m in mail.outbox if "c3@example.com" not in m.to]
    assert sorted(address for m in told for address in m.to) == sorted(
        ["madmin@example.com", second_admin.email]
    )
    assert all("clerk3" in m.subject and "clerk3" in m.body for m in told)
    assert not any(LINK.search(m.body) for m in told)  # they hear of it; they get no link


# --- the invitation's lifecycle ------------------------------------------------------------------------


@pytest.fixture
def invited(client_for: Any, demo: dict[str, User]) -> str:
    """clerk3, invited by madmin; the token of the mailed link."""
    answer = invite(client_for("madmin"), username="clerk3", role="clerk", email="c3@example.com")
    assert answer.status_code == 201, answer.content
    (token,) = links_mailed_to("c3@example.com")
    return token


def choose(client: Client, password: str, again: str | None = None) -> Any:
    return client.post(
        "/accounts/welcome/password/",
        {"password": password, "password_again": password if again is None else again},
    )


def nothing_changed(username: str = "clerk3") -> None:
    user = User.objects.get(username=username)
    assert not user.has_usable_password()
    assert not Invitation.objects.filter(user=user, used_at__isnull=False).exists()


def test_only_a_keyed_digest_of_the_token_is_stored(invited):
    invitation = Invitation.objects.get(user__username="clerk3")
    assert invitation.digest == token_digest(invited)
    stored = json.dumps(
        [*Invitation.objects.values(), *AuditRecord.objects.values("before", "after", "note")], default=str
    )
    assert invited not in stored


def test_the_link_uses_the_public_url_not_the_requests_host(client_for, demo, settings):
    settings.FAPIAO_PUBLIC_URL = "https://fapiao.example.cn"
    madmin = client_for("madmin")
    post_with_host = madmin.post(
        "/api/v1/accounts/users",
        data=json.dumps({"username": "clerk3", "role": "clerk", "email": "c3@example.com"}),
        content_type="application/json",
        headers={"Host": "localhost"},
    )
    assert post_with_host.status_code == 201
    (body,) = [m.body for m in mail.outbox if "c3@example.com" in m.to]
    assert LINK.search(body).group(1) == "https://fapiao.example.cn"  # type: ignore[union-attr]


def test_the_invited_person_chooses_their_own_password_once(invited):
    browser = Client(headers={"Accept-Language": "en"})
    opened = browser.get(f"/accounts/welcome/{invited}/")
    assert opened.status_code == 302 and opened["Location"] == "/accounts/welcome/password/"
    assert "no-store" in opened["Cache-Control"] and opened["Referrer-Policy"] == "no-referrer"
    form = browser.get("/accounts/welcome/password/")
    assert (
        form.status_code == 200 and "clerk3" in form.content.decode() and invited not in form.content.decode()
    )
    done = choose(browser, GOOD_PASSWORD)
    assert done.status_code == 302 and done["Location"] == "/login/"
    assert can_sign_in("clerk3", GOOD_PASSWORD)
    assert AuditRecord.objects.filter(action="user.password_from_link").count() == 1
    again = Client(headers={"Accept-Language": "en"}).get(f"/accounts/welcome/{invited}/")
    assert again.status_code == 410 and "already used" in again.content.decode()
    assert choose(browser, "another long passphrase").status_code == 404  # the session forgot the token
    assert can_sign_in("clerk3", GOOD_PASSWORD)


def test_a_weak_password_or_two_different_ones_change_nothing(invited):
    browser = Client(headers={"Accept-Language": "en"})
    browser.get(f"/accounts/welcome/{invited}/")
    for password, again, field in (
        ("12345678", None, "password"),  # too short, all digits, common
        ("clerk3clerk", None, "password"),  # like the username
        ("", None, "password"),
        (GOOD_PASSWORD, GOOD_PASSWORD + "!", "password_again"),
    ):
        refused = choose(browser, password, again)
        assert refused.status_code == 200 and f'id="f-{field}-error"' in refused.content.decode(), password
        nothing_changed()
    assert choose(browser, GOOD_PASSWORD).status_code == 302  # the link still works


def test_an_expired_link_changes_nothing(invited, settings):
    settings.FAPIAO_INVITATION_HOURS = 72
    with time_machine.travel(timezone.now() + timedelta(hours=72, seconds=1)):
        browser = Client(headers={"Accept-Language": "en"})
        expired = browser.get(f"/accounts/welcome/{invited}/")
        assert expired.status_code == 410 and "expired" in expired.content.decode()
        assert choose(browser, GOOD_PASSWORD).status_code == 404
    nothing_changed()


def test_a_link_that_expires_while_the_form_is_open_changes_nothing(invited):
    browser = Client(headers={"Accept-Language": "en"})
    browser.get(f"/accounts/welcome/{invited}/")
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))  # while the form was open
    late = choose(browser, GOOD_PASSWORD)
    assert late.status_code == 410 and "expired" in late.content.decode()
    nothing_changed()


def test_a_wrong_token_is_not_valid(invited):
    browser = Client(headers={"Accept-Language": "en"})
    for token in (invited[:-1] + ("A" if invited[-1] != "A" else "B"), "x", "y" * 200):
        wrong = browser.get(f"/accounts/welcome/{token}/")
        assert wrong.status_code == 404 and "not valid" in wrong.content.decode()
    assert browser.get("/accounts/welcome/password/").status_code == 404
    nothing_changed()


def test_a_newer_link_replaces_the_older_one(client_for, demo, invited):
    clerk3 = User.objects.get(username="clerk3")
    assert post(client_for("madmin"), f"/api/v1/accounts/users/{clerk3.pk}/reset-password").status_code == 200
    older = Client(headers={"Accept-Language": "en"}).get(f"/accounts/welcome/{invited}/")
    assert older.status_code == 410 and "newer link" in older.content.decode()
    newer = [token for token in links_mailed_to("c3@example.com") if token != invited]
    browser = Client()
    assert browser.get(f"/accounts/welcome/{newer[-1]}/").status_code == 302
    assert choose(browser, GOOD_PASSWORD).status_code == 302 and can_sign_in("clerk3", GOOD_PASSWORD)


def test_a_disabled_users_link_does_not_work(client_for, demo, invited):
    clerk3 = User.objects.get(username="clerk3")
    post(client_for("madmin"), f"/api/v1/accounts/users/{clerk3.pk}/disable")
    assert Client().get(f"/accounts/welcome/{invited}/").status_code == 404
    nothing_changed()


# --- resets -----------------------------------------------------------------------------------------------


def test_a_reset_ends_password_tokens_and_sessions_and_mails_a_link(client_for, demo):
    clerk_api = client_for("clerk", "read")
    session = Client()
    session.force_login(demo["clerk"])
    answer = post(client_for("madmin"), f"/api/v1/accounts/users/{demo['clerk'].pk}/reset-password")
    assert answer.status_code == 200 and answer.json()["user"]["awaiting_password"] is True
    assert clerk_api.get("/api/v1/invoices").status_code == 401
    assert session.get("/api/v1/invoices").status_code == 401
    assert not ApiToken.objects.filter(user=demo["clerk"], revoked_at__isnull=True).exists()
    assert not can_sign_in("clerk", "fapiao-demo-2026")
    (token,) = links_mailed_to("clerk@example.com")
    browser = Client()
    browser.get(f"/accounts/welcome/{token}/")
    assert choose(browser, GOOD_PASSWORD).status_code == 302 and can_sign_in("clerk", GOOD_PASSWORD)


def test_no_email_address_no_invitation_and_no_reset(client_for, demo):
    no_address = invite(client_for("madmin"), username="clerk3", role="clerk")
    assert no_address.status_code == 422 and no_address.json()["errors"][0]["field"] == "email"
    assert not User.objects.filter(username="clerk3").exists()
    User.objects.filter(pk=demo["clerk"].pk).update(email="")
    refused = post(client_for("madmin"), f"/api/v1/accounts/users/{demo['clerk'].pk}/reset-password")
    assert refused.status_code == 409 and refused.json()["type"].endswith("no_email_address")
    assert can_sign_in("clerk", "fapiao-demo-2026")  # nothing changed


# --- the first operator, and Django's own account commands ----------------------------------------------


def test_the_first_operator_gets_a_printed_link(db):
    out = StringIO()
    call_command("users", "bootstrap", "ops-first", stdout=out)
    (token,) = (match.group(2) for match in LINK.finditer(out.getvalue()))
    operator = User.objects.get(username="ops-first")
    assert not operator.has_usable_password() and mail.outbox == []
    browser = Client()
    browser.get(f"/accounts/welcome/{token}/")
    assert choose(browser, GOOD_PASSWORD).status_code == 302 and can_sign_in("ops-first", GOOD_PASSWORD)


@pytest.mark.parametrize("command", ["createsuperuser", "changepassword"])
def test_djangos_own_account_commands_are_switched_off(command, capsys):
    assert cli.main([command, "madmin"]) == 2
    assert "fapiao users" in capsys.readouterr().err
