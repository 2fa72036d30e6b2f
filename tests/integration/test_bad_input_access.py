"""Bad input at the door: wrong passwords, expired or revoked tokens, missing CSRF tokens, forbidden
actions and other merchants' objects get a clear message and the right status, and change nothing.

"Nothing" means no row of ours changed; the sign-in failure counter (axes) and the audit trail are
the two places a refusal is meant to leave a trace.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.shortcuts import resolve_url
from django.test import Client
from django.utils import timezone

from fapiao.accounts.models import ApiToken, User
from fapiao.accounts.services import create_token, revoke_token

pytestmark = pytest.mark.django_db
TRACE_APPS = {"axes", "audit", "sessions"}
# An anonymous refusal is counted per client address; every refusal per hour (运维概览).
TRACE_MODELS = {"platform.RateCounter", "platform.HourlyCount"}
M2 = "91110105MA01EFGH56"


def audit_actions_after(mark: int) -> list[str]:
    """The audit actions recorded after record id ``mark``: every refusal must leave one."""
    from fapiao.audit.models import AuditRecord

    return list(AuditRecord.objects.filter(pk__gt=mark).order_by("pk").values_list("action", flat=True))


def audit_mark() -> int:
    from fapiao.audit.models import AuditRecord

    return AuditRecord.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def table_counts() -> dict[str, int]:
    return {
        model._meta.label: model.objects.count()
        for model in apps.get_models()
        if model._meta.app_label not in TRACE_APPS and model._meta.label not in TRACE_MODELS
    }


def has_chinese(text: str) -> bool:
    return any("\u4e00" <= char <= "\u9fff" for char in text)


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith("/" + code), body
    assert body["detail"] and body["title"]
    return body


def post(client: Client, path: str, body: object | None = None) -> Any:
    return client.post(path, data=json.dumps(body or {}), content_type="application/json")


def test_wrong_password_shows_the_form_again_with_a_message_and_signs_nobody_in(demo):
    demo["operator"].set_password("the right passphrase")
    demo["operator"].save()
    before = table_counts()
    mark = audit_mark()
    browser = Client()
    response = browser.post(resolve_url(settings.LOGIN_URL), {"username": "operator", "password": "wrong"})
    assert response.status_code == 200
    assert has_chinese(response.content.decode())  # Django's own zh-Hans message beside the form
    assert "_auth_user_id" not in browser.session
    assert table_counts() == before
    assert "auth.login_failed" in audit_actions_after(mark)


def test_expired_token_is_401(demo, valid_invoice):
    token, plaintext = create_token(user=demo["clerk"], scope="write", days=1)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    before = table_counts()
    mark = audit_mark()
    response = post(
        Client(headers={"Authorization": f"Bearer {plaintext}"}), "/api/v1/invoices", valid_invoice
    )
    problem(response, 401, "invalid_token")
    assert table_counts() == before
    assert "access.unauthenticated" in audit_actions_after(mark)


def test_revoked_token_is_401(demo, valid_invoice):
    token, plaintext = create_token(user=demo["clerk"], scope="write")
    revoke_token(token=token)
    before = table_counts()
    mark = audit_mark()
    response = post(
        Client(headers={"Authorization": f"Bearer {plaintext}"}), "/api/v1/invoices", valid_invoice
    )
    problem(response, 401, "invalid_token")
    assert table_counts() == before
    assert "access.unauthenticated" in audit_actions_after(mark)


def test_a_disabled_users_token_is_401(demo, client_for):
    clerk = client_for("clerk")
    User.objects.filter(username="clerk").update(is_active=False)
    before = table_counts()
    problem(clerk.get("/api/v1/invoices"), 401, "invalid_token")
    assert table_counts() == before


def test_malformed_authorization_header_is_401(demo):
    response = Client(headers={"Authorization": "Basic Y2xlcms6eA=="}).get("/api/v1/invoices")
    problem(response, 401, "invalid_token")


def test_missing_csrf_token_on_the_api_is_403(demo, valid_invoice):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(demo["madmin"])
    before = table_counts()
    mark = audit_mark()
    body = problem(
        post(browser, "/api/v1/accounts/users", {"username": "x1", "role": "clerk"}), 403, "csrf_failed"
    )
    assert has_chinese(body["title"])
    problem(post(browser, "/api/v1/invoices", valid_invoice), 403, "csrf_failed")
    assert table_counts() == before
    assert "access.forbidden" in audit_actions_after(mark)


def test_missing_csrf_token_on_a_page_is_403(demo):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(demo["operator"])
    before = table_counts()
    mark = audit_mark()
    response = browser.post("/ledger/verify/", {"merchant": ""})
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
    assert table_counts() == before
    assert "access.forbidden" in audit_actions_after(mark)


def test_a_forbidden_action_is_403_with_the_reason(client_for, demo):
    clerk, auditor, operator = client_for("clerk"), client_for("auditor"), client_for("operator")
    before = table_counts()
    mark = audit_mark()
    body = problem(
        post(clerk, "/api/v1/accounts/users", {"username": "x2", "role": "clerk"}), 403, "role_forbidden"
    )
    assert has_chinese(body["title"])
    problem(post(auditor, "/api/v1/accounts/merchants", {"uscc": M2, "name": "x"}), 403, "role_forbidden")
    disable = post(operator, f"/api/v1/accounts/users/{demo['clerk'].pk}/disable")
    problem(disable, 403, "operators_manage_admins_only")
    assert table_counts() == before
    assert User.objects.get(username="clerk").is_active
    assert "access.forbidden" in audit_actions_after(mark)


def test_another_merchants_objects_are_404(client_for, demo):
    madmin = client_for("madmin")
    theirs, _plaintext = create_token(user=demo["clerk2"], scope="read")
    before = table_counts()
    problem(madmin.get(f"/api/v1/accounts/users/{demo['clerk2'].pk}"), 404, "user_not_found")
    problem(post(madmin, f"/api/v1/accounts/users/{demo['clerk2'].pk}/reset-password"), 404, "user_not_found")
    problem(madmin.get(f"/api/v1/accounts/merchants/{M2}"), 404, "merchant_not_found")
    problem(madmin.delete(f"/api/v1/accounts/tokens/{theirs.public_id}"), 404, "token_not_found")
    problem(madmin.get(f"/api/v1/ledger/{M2}/head"), 404, "log_not_found")
    assert table_counts() == before


def test_a_locked_out_sign_in_is_429_with_a_message_and_signs_nobody_in(demo):
    demo["operator"].set_password("the right passphrase")
    demo["operator"].save()
    for _attempt in range(settings.AXES_FAILURE_LIMIT):
        Client().post(resolve_url(settings.LOGIN_URL), {"username": "operator", "password": "wrong"})
    before = table_counts()
    browser = Client()
    response = browser.post(
        resolve_url(settings.LOGIN_URL), {"username": "operator", "password": "the right passphrase"}
    )
    assert response.status_code == 429
    assert "_auth_user_id" not in browser.session
    assert table_counts() == before
