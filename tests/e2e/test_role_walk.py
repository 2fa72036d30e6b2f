"""Every role walks its menu in Chromium: each page renders, without console errors, and in
zh-Hans without untranslated English words; each page is saved as a screenshot."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.e2e

ROLES = ["clerk", "madmin", "support", "reviewer", "auditor", "operator"]
NOT_OURS = ("/admin/",)  # Django's own admin pages


@pytest.mark.parametrize("username", ROLES)
def test_menu_pages(pilot_for: Any, demo_password: str, username: str) -> None:
    pilot = pilot_for(f"walk-{username}")
    pilot.sign_in(username, demo_password)
    links = pilot.page.eval_on_selector_all(".site-nav a", "links => links.map(a => a.getAttribute('href'))")
    assert links, "every role has a menu"
    for href in links:
        if href.startswith(NOT_OURS):
            continue
        pilot.goto(href)
        label = href.strip("/").replace("/", "-") or "home"
        pilot.shot(label)
    pilot.assert_clean()
