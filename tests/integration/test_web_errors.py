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
