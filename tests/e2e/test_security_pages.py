"""In Chromium, under the real Content-Security-Policy: the API docs work without inline code, the
locked-out page explains itself, and an API token is made and revoked on the tokens page."""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = pytest.mark.e2e


def test_api_docs_render_under_the_content_security_policy(pilot_for: Any) -> None:
    pilot = pilot_for("api-docs")
    response = pilot.goto("/api/v1/docs")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    pilot.page.wait_for_selector(".opblock")
    assert pilot.page.locator(".opblock").count() > 10
    pilot.page.locator(".opblock-summary").first.click()
    pilot.page.get_by_text("Authorize").first.click()
    pilot.shot("swagger", chinese=False)  # Swagger UI's own English
    pilot.assert_clean()  # a CSP violation is a console error


def test_the_locked_out_page_says_what_happened(pilot_for: Any) -> None:
    pilot = pilot_for("locked-out")
    pilot.expected_statuses.add(429)
    for attempt in range(5):
        pilot.goto("/login/")
        pilot.page.fill("#f-username", "reviewer2")
        pilot.page.fill("#f-password", f"not-the-password-{attempt}")
        pilot.page.click("button[type=submit].primary")
        pilot.page.wait_for_load_state("networkidle")
    heading = pilot.page.locator("h1").inner_text()
    assert "锁定" in heading, heading
    assert "30" in pilot.page.locator("[role=alert]").inner_text()
    pilot.shot("locked-out")
    pilot.assert_clean()


def test_a_token_is_made_shown_once_and_revoked_on_the_page(pilot_for: Any, demo_password: str) -> None:
    pilot = pilot_for("tokens")
    pilot.sign_in("auditor", demo_password)
    pilot.goto("/accounts/tokens/")
    pilot.page.fill("#f-name", "审计导出")
    pilot.page.click("main form button.primary")
    pilot.page.wait_for_load_state("networkidle")
    secret = pilot.page.locator("code.secret").inner_text()
    assert re.fullmatch(r"fpv_[A-Za-z0-9_-]{20,}", secret)
    pilot.shot("token-shown")
    pilot.goto("/accounts/tokens/")
    assert secret not in pilot.page.content()
    pilot.page.locator("main table button.danger").first.click()
    pilot.page.wait_for_load_state("networkidle")
    assert pilot.page.locator("main table button.danger").count() == 0
    pilot.shot("token-revoked")
    pilot.assert_clean()
