"""No untranslated English on a zh-Hans page: every role walks its menu (and the pages behind it)
and the text a person reads or hears must contain no English words outside an allow-list of
technical tokens.  The browser tests (tests/e2e) check the same on the rendered pages; this walk
runs in every pass, without a browser.

Also: templates carry no inline script or style (the Content-Security-Policy forbids them).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

import fapiao
from tests.untranslated import english_words as words_of

SKIPPED = {"script", "style", "code", "pre", "kbd", "samp", "template", "noscript"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
READ_ATTRIBUTES = ("placeholder", "title", "aria-label", "alt")
ROLES = ["clerk", "madmin", "support", "reviewer", "auditor", "operator"]
NOT_OURS = ("/admin/",)


class ReadableText(HTMLParser):
    """The words of a page a person reads or hears (code, lang="en" and translate="no" excluded)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[bool] = []  # per open element: is its content skipped?
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        skipped = (
            (self.stack and self.stack[-1])
            or tag in SKIPPED
            or values.get("lang") == "en"
            or values.get("translate") == "no"  # data, not interface: usernames, file names
        )
        if not skipped:
            self.parts.extend(str(values[name]) for name in READ_ATTRIBUTES if values.get(name))
        if tag not in VOID:
            self.stack.append(bool(skipped))

    def handle_endtag(self, tag: str) -> None:
        if tag not in VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if not (self.stack and self.stack[-1]):
            self.parts.append(data)


def english_words(html: str) -> list[str]:
    reader = ReadableText()
    reader.feed(html)
    return words_of(" ".join(reader.parts))


def test_the_reader_skips_code_and_english_markup() -> None:
    html = (
        '<p>发票 <code>fapiao receipt verify</code> <button lang="en">English</button> Oops</p><br>'
        '<span translate="no">clerk</span>'
    )
    assert english_words(html) == ["Oops"]


def links(html: str, selector_class: str = "site-nav") -> list[str]:
    nav = html.split(f'class="{selector_class}"', 1)[-1].split("</nav>", 1)[0]
    return re.findall(r'href="([^"]+)"', nav)


def issue_one(client: Client) -> str:
    data = {
        "kind": "ordinary",
        "line_count": "1",
        "buyer_name": "北京买方贸易有限公司",
        "lines-0-name": "*信息技术服务*软件开发",
        "lines-0-quantity": "1",
        "lines-0-unit_price": "100",
        "lines-0-tax_rate": "0.06",
    }
    review = client.post("/invoices/new/", {**data, "action": "review"}).content.decode()
    token = re.search(r'name="form_token" value="([0-9a-f]{32})"', review)
    assert token
    response = client.post("/invoices/new/", {**data, "action": "confirm", "form_token": token.group(1)})
    return str(response["Location"])


@pytest.mark.django_db
@pytest.mark.parametrize("username", ROLES)
def test_every_page_of_every_role_is_in_chinese(demo: dict[str, Any], username: str) -> None:
    if username != "clerk":  # something for everyone to see
        issuer = Client()
        issuer.force_login(demo["clerk"])
        issue_one(issuer)
    client = Client()
    client.force_login(demo[username])
    home = client.get("/").content.decode()
    pages = [href for href in links(home) if not href.startswith(NOT_OURS)]
    assert pages, "every role has a menu"
    if username == "clerk":
        detail = issue_one(client)
        number = detail.strip("/").split("/")[-1]
        pages += [detail, f"/invoices/{number}/print/", f"/invoices/{number}/red-letter/", "/password/"]
        pages += ["/address-book/new/", "/products/new/", "/invoices/?number=1", "/no-such-page/"]
    if username == "support":  # 代商户登记 (issue 14), reached from the case list and the home page
        pages += ["/cases/register/"]
    pages += ["/cases/guide/invoices/"]
    found = {}
    for page in pages:
        response = client.get(page)
        assert response.status_code in (200, 404), (page, response.status_code)
        words = english_words(response.content.decode())
        if words:
            found[page] = words
    assert not found, f"untranslated words in zh-Hans as {username}: {found}"


def test_sign_in_page_is_in_chinese(db: None) -> None:
    assert english_words(Client().get("/login/").content.decode()) == []


# --- Content-Security-Policy: nothing inline ----------------------------------------------------

TEMPLATES = sorted((Path(fapiao.__file__).parent / "web" / "templates").rglob("*.html"))
INLINE = {
    "style attribute": re.compile(r"\sstyle\s*="),
    "style element": re.compile(r"<style\b"),
    "inline script": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>"),
    "event handler attribute": re.compile(r"\son[a-z]+\s*=", re.IGNORECASE),
    "javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
}


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: path.name)
def test_templates_have_nothing_inline(template: Path) -> None:
    text = template.read_text(encoding="utf-8")
    found = [name for name, pattern in INLINE.items() if pattern.search(text)]
    assert not found, f"{template}: {found} (CSP: script-src 'self'; style-src 'self')"
