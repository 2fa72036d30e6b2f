"""Issue 13, finding 14: whole numbers and dates in query parameters are parsed strictly (ASCII
digits, bounded ranges) — a 422 at the parameter, never an ``OverflowError`` or a ``ValueError``.

``str.isdigit()`` accepted ``²`` and ``①`` and ``int()`` then failed; 999,999 days overflowed the
date arithmetic; 9999-12-31 + 1 day overflowed, and 0001-01-01 in UTC+8 failed on SQLite.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.integration.refusals import Unchanged, field_codes, problem

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(client_for: Any) -> dict[str, Any]:
    return {name: client_for(name, "read") for name in ("clerk", "reviewer", "auditor")}


CASES = [
    ("reviewer", "/api/v1/cases", "older_than_days", "999999", "out_of_range"),
    ("reviewer", "/api/v1/cases", "older_than_days", "²", "not_a_whole_number"),
    ("reviewer", "/api/v1/cases", "older_than_days", "①", "not_a_whole_number"),
    ("reviewer", "/api/v1/cases", "older_than_days", "-1", "not_a_whole_number"),
    ("reviewer", "/api/v1/cases", "older_than_days", "9" * 5000, "out_of_range"),
    ("reviewer", "/api/v1/cases", "page", "①", "not_a_whole_number"),
    ("reviewer", "/api/v1/cases", "page", "²", "not_a_whole_number"),
    ("reviewer", "/api/v1/cases", "page", "0", "out_of_range"),
    ("clerk", "/api/v1/invoices", "page", "①", "not_a_whole_number"),
    ("clerk", "/api/v1/invoices", "page", "1_0", "not_a_whole_number"),
    ("clerk", "/api/v1/invoices", "date_to", "9999-12-31", "date_out_of_range"),
    ("clerk", "/api/v1/invoices", "date_from", "0001-01-01", "date_out_of_range"),
    ("clerk", "/api/v1/invoices", "date_from", "2026-W48-1", "bad_date"),
    ("auditor", "/api/v1/audit", "date_to", "9999-12-31", "date_out_of_range"),
    ("auditor", "/api/v1/audit", "date_from", "0001-01-01", "date_out_of_range"),
    ("auditor", "/api/v1/audit", "date_from", "20261128", "bad_date"),
    ("auditor", "/api/v1/audit", "date_from", "２０２６-１１-２８x", "bad_date"),
    ("auditor", "/api/v1/audit", "page", "²", "not_a_whole_number"),
]


@pytest.mark.parametrize("query", CASES, ids=[f"{p} {n}={v[:12]}" for _w, p, n, v, _c in CASES])
def test_numbers_and_dates_in_queries(people, query):
    who, path, name, value, code = query
    with Unchanged():
        response = people[who].get(path, {name: value})
    assert field_codes(problem(response, 422)) == {(name, code)}


@pytest.mark.parametrize(
    "who,path,params",
    [
        ("reviewer", "/api/v1/cases", {"older_than_days": "36500", "page": "1"}),
        ("clerk", "/api/v1/invoices", {"date_from": "1900-01-01", "date_to": "2999-12-31"}),
        ("clerk", "/api/v1/invoices", {"date_from": "２０２６-１１-２８"}),  # full-width, as typed in Chinese
        ("auditor", "/api/v1/audit", {"date_from": "1900-01-01", "date_to": "2999-12-31", "page": "01"}),
    ],
)
def test_the_bounds_themselves_are_accepted(people, who, path, params):
    assert people[who].get(path, params).status_code == 200


def _page(demo: dict[str, Any], name: str) -> Client:
    client = Client()
    client.force_login(demo[name])
    return client


@pytest.mark.parametrize(
    "value,code",
    [("999999", "out_of_range"), ("²", "not_a_whole_number")],
)
def test_the_case_list_page_shows_the_problem_beside_the_filter(demo, value, code):
    client = _page(demo, "reviewer")
    with Unchanged():
        response = client.get("/cases/", {"older_than_days": value})
    assert response.status_code == 200
    assert 'aria-invalid="true"' in response.content.decode()


@pytest.mark.parametrize("value", ["9999-12-31", "0001-01-01", "20261128"])
def test_the_audit_page_shows_the_problem_beside_the_date(demo, value):
    response = _page(demo, "auditor").get("/audit/", {"date_to": value})
    assert response.status_code == 422
    assert 'aria-invalid="true"' in response.content.decode()


@pytest.mark.parametrize("value", ["9999-12-31", "0001-01-01", "2026-W48-1"])
def test_the_totals_page_shows_the_problem_beside_the_date(demo, value):
    response = _page(demo, "clerk").get("/totals/", {"date_to": value})
    assert response.status_code == 200
    assert 'aria-invalid="true"' in response.content.decode()


@pytest.mark.parametrize("value", ["²", "①", "99999999999999999999999"])
def test_ids_typed_into_pages(demo, value):
    """The issue form's buyer fragment and hidden numeric fields read ids strictly too."""
    client = _page(demo, "clerk")
    assert client.get("/invoices/new/buyer/", {"buyer_id": value}).status_code == 200
    response = client.post("/invoices/new/", {"action": "add_line", "remove_line": value, "buyer_id": value})
    assert response.status_code == 200
