"""Authentication: Argon2id, lockout and unlock, cookies, CSRF, security headers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.shortcuts import resolve_url
from django.test import Client
from django.utils import timezone

from fapiao.accounts.choices import Role
from fapiao.accounts.hashers import OWASP_MIN_MEMORY_KIB, OWASP_MIN_PARALLELISM, OWASP_MIN_TIME_COST
from fapiao.accounts.models import User

pytestmark = pytest.mark.django_db
REAL_HASHERS = ["fapiao.accounts.hashers.Argon2idHasher", "django.contrib.auth.hashers.PBKDF2PasswordHasher"]


def login_url() -> str:
    return resolve_url(django_settings.LOGIN_URL)


def sign_in(client: Client, username: str, password: str) -> Any:
    return client.post(login_url(), {"username": username, "password": password})


def signed_in_as(client: Client) -> str | None:
    user_id = client.session.get("_auth_user_id")
    return User.objects.get(pk=user_id).username if user_id else None


@pytest.fixture
def operator2(demo: dict[str, User]) -> User:
    """A second operator (staff, so the admin's sign-in page accepts them too)."""
    user = User(username="operator2", role=Role.OPERATOR, is_staff=True)
    user.set_password("correct horse battery staple")
    user.save()
    return user


# --- passwords ------------------------------------------------------------------------------------


def test_argon2id_is_the_configured_hasher():
    from fapiao import settings as configured

    assert configured.PASSWORD_HASHERS[0] == "fapiao.accounts.hashers.Argon2idHasher"


def test_a_real_users_stored_hash_is_argon2id_at_or_above_owasp(settings, demo):
    settings.PASSWORD_HASHERS = REAL_HASHERS
    from argon2 import extract_parameters
    from argon2.low_level import Type

    user = demo["clerk"]
    user.set_password("a long and private passphrase")
    user.save()
    stored = User.objects.get(pk=user.pk).password
    assert stored.startswith("argon2$argon2id$"), stored[:20]
    params = extract_parameters(stored.removeprefix("argon2"))
    assert params.type is Type.ID
    assert params.memory_cost >= OWASP_MIN_MEMORY_KIB
    assert params.time_cost >= OWASP_MIN_TIME_COST
    assert params.parallelism >= OWASP_MIN_PARALLELISM
    assert User.objects.get(pk=user.pk).check_password("a long and private passphrase")


def test_a_weaker_stored_hash_is_upgraded_at_sign_in(settings, operator2):
    settings.PASSWORD_HASHERS = [*REAL_HASHERS, "django.contrib.auth.hashers.MD5PasswordHasher"]
    assert operator2.password.startswith("md5$")  # made under the fast test hasher
    sign_in(Client(), "operator2", "correct horse battery staple")
    assert User.objects.get(pk=operator2.pk).password.startswith("argon2$argon2id$")


def test_password_validators_refuse_weak_passwords(demo):
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    for weak in ("12345678901", "password123", "short"):
        with pytest.raises(ValidationError):
            validate_password(weak, demo["clerk"])


# --- lockout --------------------------------------------------------------------------------------


def test_five_wrong_passwords_lock_the_username_with_a_clear_message(operator2):
    client = Client()
    for _attempt in range(4):
        response = sign_in(client, "operator2", "wrong password")
        assert response.status_code == 200  # the form again, with its error
    assert sign_in(client, "operator2", "wrong password").status_code == 429  # the fifth locks
    locked = sign_in(client, "operator2", "correct horse battery staple")
    assert locked.status_code == 429
    assert signed_in_as(client) is None
    page = locked.content.decode()
    assert "30" in page  # says how long
    english = sign_in(Client(headers={"Accept-Language": "en"}), "operator2", "correct horse battery staple")
    assert (
        "Too many wrong passwords or codes: this account is locked for 30 minutes."
        in english.content.decode()
    )


def test_the_lockout_is_per_username_not_per_address(operator2, demo):
    demo["operator"].set_password("the operator's own passphrase")
    demo["operator"].save()
    attacker = Client(REMOTE_ADDR="10.0.0.1")
    for _attempt in range(5):
        sign_in(attacker, "operator2", "wrong")
    # The same address may still sign in as someone else ...
    other = sign_in(attacker, "operator", "the operator's own passphrase")
    assert other.status_code == 302 and signed_in_as(attacker) == "operator"
    # ... and another address cannot sign in as the locked username.
    assert (
        sign_in(Client(REMOTE_ADDR="10.0.0.2"), "operator2", "correct horse battery staple").status_code
        == 429
    )


def test_an_operator_unlocks_through_the_api(client_for, operator2):
    for _attempt in range(5):
        sign_in(Client(), "operator2", "wrong")
    listed = client_for("operator").get(f"/api/v1/accounts/users/{operator2.pk}").json()
    assert listed["locked"] is True
    response = client_for("operator").post(f"/api/v1/accounts/users/{operator2.pk}/unlock")
    assert response.status_code == 200 and response.json()["attempts_cleared"] == 1
    assert response.json()["user"]["locked"] is False
    client = Client()
    assert sign_in(client, "operator2", "correct horse battery staple").status_code == 302
    assert signed_in_as(client) == "operator2"


def test_only_operators_unlock(client_for, operator2, demo):
    for _attempt in range(5):
        sign_in(Client(), "operator2", "wrong")
    for role in ("madmin", "auditor", "support", "reviewer"):
        assert client_for(role).post(f"/api/v1/accounts/users/{operator2.pk}/unlock").status_code in {
            403,
            404,
        }
    assert sign_in(Client(), "operator2", "correct horse battery staple").status_code == 429


def test_the_lockout_ends_after_the_cooloff(operator2):
    import time_machine

    for _attempt in range(5):
        sign_in(Client(), "operator2", "wrong")
    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        assert sign_in(Client(), "operator2", "correct horse battery staple").status_code == 302


def test_a_success_resets_the_count(operator2):
    for _attempt in range(4):
        sign_in(Client(), "operator2", "wrong")
    assert sign_in(Client(), "operator2", "correct horse battery staple").status_code == 302
    for _attempt in range(4):
        sign_in(Client(), "operator2", "wrong")
    assert sign_in(Client(), "operator2", "correct horse battery staple").status_code == 302


# --- cookies, CSRF, headers ---------------------------------------------------------------------


def test_session_cookie_is_httponly_and_samesite(operator2):
    client = Client()
    response = sign_in(client, "operator2", "correct horse battery staple")
    cookie = response.cookies[django_settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"


def test_production_cookies_are_secure(tmp_path: Path):
    env = {
        **os.environ,
        "FAPIAO_PRODUCTION": "1",
        "FAPIAO_SECRET_KEY": "y" * 60,
        "FAPIAO_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "fapiao.settings",
    }
    code = (
        "import json; from django.conf import settings as s; print(json.dumps([s.SESSION_COOKIE_SECURE, "
        "s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.SESSION_COOKIE_SAMESITE, s.SECURE_HSTS_SECONDS]))"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert json.loads(result.stdout.splitlines()[-1]) == [True, True, True, "Lax", 31536000]


def test_api_session_post_without_csrf_token_is_403(demo, valid_invoice):
    from fapiao.invoices.models import Invoice

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(demo["clerk"])
    response = browser.post(
        "/api/v1/invoices", data=json.dumps(valid_invoice), content_type="application/json"
    )
    assert response.status_code == 403
    assert response.json()["type"].endswith("csrf_failed")
    assert Invoice.objects.count() == 0


def test_api_session_post_with_csrf_token_works(demo, valid_invoice):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(demo["clerk"])
    browser.get("/api/v1/docs")  # sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    response = browser.post(
        "/api/v1/invoices",
        data=json.dumps(valid_invoice),
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 201, response.content


def test_no_session_cookie_means_401_not_a_csrf_failure(db, valid_invoice):
    response = Client(enforce_csrf_checks=True).post(
        "/api/v1/invoices", data=json.dumps(valid_invoice), content_type="application/json"
    )
    assert response.status_code == 401


def test_a_page_form_without_csrf_token_is_a_friendly_403(demo):
    browser = Client(enforce_csrf_checks=True, headers={"Accept-Language": "en"})
    browser.force_login(demo["auditor"])
    response = browser.post("/ledger/verify/", {"merchant": ""})
    assert response.status_code == 403
    assert "reload the page" in response.content.decode()


def test_no_page_is_exempt_from_csrf():
    """Every view outside the API keeps Django's CSRF check (the API checks sessions itself)."""
    from django.urls import URLPattern, URLResolver, get_resolver

    exempt = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif (
                isinstance(pattern, URLPattern)
                and getattr(pattern.callback, "csrf_exempt", False)
                and not route.startswith("api/v1/")
            ):
                exempt.append(route)

    walk(get_resolver().url_patterns, "")
    assert exempt == []


def test_security_headers_on_every_kind_of_response(client, demo):
    for path in ("/healthz", "/api/v1/docs", "/api/v1/invoices", "/ledger/verify/"):
        response = client.get(path)
        csp = response["Content-Security-Policy"]
        directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
        assert directives["default-src"] == "'self'"
        assert directives["script-src"] == "'self'"
        assert directives["style-src"] == "'self'"
        assert directives["img-src"] == "'self' data:"
        assert directives["frame-ancestors"] == "'none'"
        assert directives["form-action"] == "'self'"
        assert directives["base-uri"] == "'self'"
        assert directives["object-src"] == "'none'"
        assert response["Referrer-Policy"] == "same-origin"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Cross-Origin-Opener-Policy"] == "same-origin"
        assert response["X-Frame-Options"] == "DENY"
