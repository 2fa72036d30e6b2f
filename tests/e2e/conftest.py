"""Browser tests: Debian's Chromium (driven by Playwright for Python) against a real server.

The server is what ``make run`` starts — migrate, collectstatic, demo data, gunicorn with group
commit — in a throwaway data directory, so the pages are tested with whitenoise, the
Content-Security-Policy and the production middleware, not a test double.

Chromium is Debian's (``/usr/bin/chromium``, installed with ``fonts-noto-cjk`` by ``.ci/run``);
``playwright install`` is never run.  Without Chromium these tests skip, except under CI.

Every page visited is saved as a full-page screenshot under ``artifacts/screenshots/``; every
page must render without console errors, and (in zh-Hans) without untranslated English words.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.pg_cluster import Server, fapiao_command, gunicorn_server, server_env
from tests.untranslated import english_words

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"


# Text a person reads or hears: visible text nodes (and options of closed selects), screen-reader
# only text, labels in attributes.  Code (<code>, <pre>), text marked lang="en" (the English
# switch) and translate="no" (data such as usernames and file names) are not translatable prose.
VISIBLE_TEXT_JS = """
() => {
  const skipped = 'script, style, noscript, template, code, pre, kbd, samp, [lang="en"], [translate="no"]';
  const parts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const element = node.parentElement;
    if (!element || element.closest(skipped)) continue;
    const inOption = element.closest('option');
    if (!inOption && element.checkVisibility && !element.checkVisibility()) continue;
    parts.push(node.textContent);
  }
  for (const element of document.querySelectorAll('[placeholder], [title], [aria-label], img[alt]')) {
    if (element.closest(skipped)) continue;
    for (const name of ['placeholder', 'title', 'aria-label', 'alt']) {
      if (element.hasAttribute(name)) parts.push(element.getAttribute(name));
    }
  }
  parts.push(document.title);
  return parts.join('\\n');
}
"""


@dataclass
class Pilot:
    """One browser tab with the checks every page gets: screenshot, console, untranslated words."""

    page: Any
    base: str
    name: str
    shots: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    expected_statuses: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.page.on("console", self._console)
        self.page.on(
            "pageerror", lambda error: self.problems.append(f"page error on {self.page.url}: {error}")
        )
        self.page.on("response", self._response)

    def _console(self, message: Any) -> None:
        if os.environ.get("FAPIAO_BROWSER_TRACE"):
            print("console", message.type, self.page.url, message.text[:80])
        if message.type in ("error", "warning") and not self._expected(message.text):
            where = message.location.get("url", "") if message.location else ""
            self.problems.append(f"console {message.type} on {self.page.url} ({where}): {message.text}")

    def _expected(self, text: str) -> bool:
        return any(f"status of {status}" in text for status in self.expected_statuses)

    def _response(self, response: Any) -> None:
        if response.status >= 500:
            self.problems.append(f"{response.status} from {response.url}")

    def goto(self, path: str) -> Any:
        return self.page.goto(self.base + path)

    def shot(self, label: str, *, chinese: bool = True) -> Path:
        """A full-page screenshot of the page as it is now, after checking its text."""
        self.page.wait_for_load_state("networkidle")
        if os.environ.get("FAPIAO_BROWSER_TRACE"):
            print("shot", label)
        if chinese:
            words = english_words(self.page.evaluate(VISIBLE_TEXT_JS))
            if words:
                self.problems.append(f"untranslated words on {self.page.url} ({label}): {words}")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.name}-{len(self.shots) + 1:02d}-{label}.png"
        # caret="initial": hiding the caret would inject a <style>, which our CSP rightly refuses.
        self.page.screenshot(path=str(path), full_page=True, caret="initial")
        self.shots.append(path)
        return path

    def sign_in(self, username: str, password: str) -> None:
        self.goto("/login/")
        self.shot("login")
        self.page.fill("#f-username", username)
        self.page.fill("#f-password", password)
        self.page.click("button[type=submit].primary")
        self.page.wait_for_url(self.base + "/")

    def sign_out(self) -> None:
        self.page.click("form[action='/logout/'] button")
        self.page.wait_for_url(re.compile(r".*/login/$"))

    def assert_clean(self) -> None:
        assert not self.problems, "\n".join(self.problems)


@pytest.fixture(scope="session")
def demo_password() -> str:
    from fapiao.accounts.demo import demo_password

    return demo_password()[0]


@contextlib.contextmanager
def demo_server(var: Path, demo_password: str) -> Iterator[Server]:
    """`make run` in ``var``: migrate, collectstatic, demo data, gunicorn."""
    env = server_env(
        var_dir=var,
        database_url=f"sqlite:///{var / 'fapiao.sqlite3'}",
        FAPIAO_DEMO="1",
        FAPIAO_DEMO_PASSWORD=demo_password,
        FAPIAO_THREADS="8",
    )
    fapiao_command(env, "migrate", "--noinput")
    fapiao_command(env, "collectstatic", "--noinput", "--verbosity", "0")
    fapiao_command(env, "demo")
    with gunicorn_server(env, var / "gunicorn.log") as server:
        yield server


@pytest.fixture(scope="session")
def e2e_server(tmp_path_factory: pytest.TempPathFactory, demo_password: str) -> Iterator[Server]:
    """The server the walks share, in a throwaway directory."""
    with demo_server(tmp_path_factory.mktemp("e2e-var"), demo_password) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is required for the browser tests under CI")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium fonts-noto-cjk)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def pilot_for(browser: Any, e2e_server: Server) -> Iterator[Any]:
    """Open a fresh browser context (own cookies) for a named walk; checked when the test ends."""
    contexts: list[Any] = []
    pilots: list[Pilot] = []

    def make(name: str, *, width: int = 1280, height: int = 900, server: Server | None = None) -> Pilot:
        context = browser.new_context(
            locale="zh-CN",
            timezone_id="Asia/Shanghai",
            viewport={"width": width, "height": height},
            accept_downloads=True,
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        pilot = Pilot(context.new_page(), (server or e2e_server).base, name)
        pilots.append(pilot)
        return pilot

    yield make
    for context in contexts:
        context.close()


def server_database(server: Server) -> Path:
    """The e2e server's SQLite file (beside its gunicorn log, in its throwaway data directory), for
    tests that must do what no page may: delete an invoice's row, as a crash would."""
    return server.log_file.parent / "fapiao.sqlite3"
