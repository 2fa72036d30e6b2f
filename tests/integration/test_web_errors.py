"""Error pages say what happened and what to do next; a database outage is a 503 page with
Retry-After outside the API and a problem document inside it."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import OperationalError
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def clerk(demo: dict[str, Any]) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(demo["clerk"])
    return client


def test_not_found_page(clerk: Client) -> None:
    response = clerk.get("/no-such-page/")
    html = response.content.decode()
    assert response.status_code == 404
    assert "找不到" in html and "您可以" in html  # what happened, what to do next
    assert 'href="/invoices/"' in html


def test_not_found_under_the_api_is_a_problem_document(clerk: Client) -> None:
    response = clerk.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/problem+json")


def test_forbidden_page(demo: dict[str, Any]) -> None:
    client = Client()
    client.force_login(demo["support"])
    response = client.get("/invoices/new/")
    assert response.status_code == 403
    assert "您可以" in response.content.decode()


def test_database_outage_is_a_503_page(clerk: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    def down(**kwargs: Any) -> None:
        raise OperationalError("database is locked")

    monkeypatch.setattr("fapiao.invoices.selectors.invoice_list", down)
    response = clerk.get("/invoices/")
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "发票系统暂不可用" in html and "没有丢失" in html
    assert "api/v1" not in html


def test_database_outage_under_the_api_stays_a_problem_document(
    client_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(**kwargs: Any) -> None:
        raise OperationalError("database is locked")

    monkeypatch.setattr("fapiao.invoices.selectors.invoice_list", down)
    response = client_for("clerk").get("/api/v1/invoices")
    assert response.status_code == 503
    assert response["Content-Type"].startswith("application/problem+json")
    assert int(response["Retry-After"]) > 0


def test_server_error_page(clerk: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("fapiao.invoices.selectors.invoice_list", broken)
    response = clerk.get("/invoices/")
    assert response.status_code == 500
    html = response.content.decode()
    assert "您可以" in html and "a bug" not in html


def test_banners(demo: dict[str, Any], settings: Any) -> None:
    from fapiao.core.choices import IncidentKind
    from fapiao.ledger.incidents import open_incident

    settings.DEMO = True
    operator, clerk = Client(), Client()
    operator.force_login(demo["operator"])
    clerk.force_login(demo["clerk"])
    assert "演示环境" in clerk.get("/").content.decode()
    assert "banner-incident" not in operator.get("/").content.decode()
    open_incident(kind=IncidentKind.RECEIPT_NOT_PROVEN, merchant=None, identity={"test": 1}, details={})
    assert "banner-incident" in operator.get("/").content.decode()  # operators see open incidents
    assert "banner-incident" not in clerk.get("/").content.decode()
    settings.DEMO = False
    assert "演示环境" not in clerk.get("/").content.decode()


def test_password_change_page(demo: dict[str, Any]) -> None:
    from fapiao.accounts.demo import demo_password

    user = demo["clerk"]
    user.must_change_password = True
    user.save(update_fields=["must_change_password"])
    client = Client()
    client.force_login(user)
    assert client.get("/invoices/")["Location"].startswith("/password/")  # a one-time password first
    refused = client.post("/password/", {"old_password": "wrong", "new_password1": "x", "new_password2": "y"})
    assert 'id="error-summary"' in refused.content.decode()
    new = "Ein-neues-Passwort-2026"
    changed = client.post(
        "/password/", {"old_password": demo_password()[0], "new_password1": new, "new_password2": new}
    )
    assert changed.status_code == 302 and changed["Location"] == "/password/done/"
    user.refresh_from_db()
    assert user.check_password(new) and not user.must_change_password
    assert client.get("/invoices/").status_code == 200  # still signed in, free to work


def test_sign_in_and_out(demo: dict[str, Any]) -> None:
    from fapiao.accounts.demo import demo_password

    client = Client()
    page = client.get("/login/").content.decode()
    assert "登录" in page and 'autocomplete="current-password"' in page
    wrong = client.post("/login/", {"username": "clerk", "password": "nope"})
    assert wrong.status_code == 200 and 'id="error-summary"' in wrong.content.decode()
    signed_in = client.post("/login/", {"username": "clerk", "password": demo_password()[0]})
    assert signed_in.status_code == 302 and signed_in["Location"] == "/"
    assert client.post("/logout/")["Location"] == "/login/"
    assert client.get("/invoices/").status_code == 302


# --- one mapping for every domain error (fapiao.platform.errors.respond) ----------------------------


@pytest.fixture
def buyer_id(clerk: Client) -> int:
    from fapiao.catalogue.models import Buyer

    clerk.post("/address-book/new/", {"name": "北京客户", "tax_id": "91110000MA01XKQ2TQ"})
    return Buyer.objects.get().pk


def _conflict(**kwargs: Any) -> None:
    from fapiao.core.errors import ConflictError

    raise ConflictError()


def test_a_conflict_on_a_form_goes_back_to_it_with_the_message(
    clerk: Client, buyer_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("fapiao.catalogue.services.delete_buyer", _conflict)
    form = f"http://testserver/address-book/{buyer_id}/delete/"
    response = clerk.post(f"/address-book/{buyer_id}/delete/", HTTP_REFERER=form)
    assert response.status_code == 302 and response["Location"] == form
    page = clerk.get(response["Location"]).content.decode()
    assert "请求与当前状态冲突，未做任何更改。" in page  # the error's own message, translated


def test_a_conflict_with_no_form_of_ours_to_go_back_to_is_a_page(
    clerk: Client, buyer_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("fapiao.catalogue.services.delete_buyer", _conflict)
    for referer in ({}, {"HTTP_REFERER": "https://elsewhere.example/form"}):
        response = clerk.post(f"/address-book/{buyer_id}/delete/", **referer)
        html = response.content.decode()
        assert response.status_code == 409
        assert response["Content-Type"].startswith("text/html")
        assert "请求与当前状态冲突" in html and "您可以" in html  # what happened, what to do next


def test_the_api_and_the_pages_answer_the_same_error_each_in_their_way(
    clerk: Client, client_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("fapiao.invoices.selectors.invoice_list", _conflict)
    api = client_for("clerk").get("/api/v1/invoices")
    assert api.status_code == 409 and api["Content-Type"].startswith("application/problem+json")
    assert api.json()["detail"] == "请求与当前状态冲突，未做任何更改。"
    page = clerk.get("/invoices/")
    assert page.status_code == 409 and page["Content-Type"].startswith("text/html")
    assert api.json()["detail"] in page.content.decode()


def test_an_unavailable_service_is_the_503_page(clerk: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    from fapiao.core.errors import UnavailableError

    def unavailable(**kwargs: Any) -> None:
        raise UnavailableError()

    monkeypatch.setattr("fapiao.invoices.selectors.invoice_list", unavailable)
    response = clerk.get("/invoices/")
    assert response.status_code == 503 and int(response["Retry-After"]) > 0
    assert "发票系统暂不可用" in response.content.decode()
