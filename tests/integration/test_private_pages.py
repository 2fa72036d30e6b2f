"""Issue 13, finding 11: an answer that shows personal data in full is never cached.

``/address-book/<id>/`` and the issue form's buyer fragment showed an individual's ID number, phone
and address in full without ``Cache-Control: no-store`` — a shared proxy or the browser's disk cache
could keep them.  Every answer that decrypted personal data, or echoes it as typed, now says
``no-store``, as the API's reveal already did; masked lists stay cacheable as before.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from fapiao.catalogue.models import Buyer
from fapiao.catalogue.services import BuyerInput, save_buyer
from tests.integration.case_helpers import claim_for, post

pytestmark = pytest.mark.django_db

RESIDENT_ID = "11010519491231002X"
PERSON = {"name": "张三", "tax_id": RESIDENT_ID, "address": "北京市朝阳区某路1号", "phone": "13800138000"}


@pytest.fixture
def clerk(demo: dict[str, Any]) -> Client:
    client = Client()
    client.force_login(demo["clerk"])
    return client


@pytest.fixture
def entry(demo: dict[str, Any]) -> Buyer:
    return save_buyer(user=demo["clerk"], data=BuyerInput(**PERSON))


def _no_store(response: Any) -> bool:
    return "no-store" in response.get("Cache-Control", "")


def test_the_address_book_entry_page(clerk, entry):
    response = clerk.get(f"/address-book/{entry.pk}/")
    assert response.status_code == 200 and RESIDENT_ID in response.content.decode()
    assert _no_store(response)


def test_the_issue_forms_buyer_fragment(clerk, entry):
    response = clerk.get("/invoices/new/buyer/", {"buyer_id": entry.pk})
    assert response.status_code == 200 and "13800138000" in response.content.decode()
    assert _no_store(response)


def test_the_issue_form_filled_from_the_address_book(clerk, entry):
    response = clerk.post(
        "/invoices/new/", {"action": "add_line", "buyer_id": str(entry.pk), "kind": "ordinary"}
    )
    assert response.status_code == 200 and "13800138000" in response.content.decode()
    assert _no_store(response)


def test_the_issue_form_echoing_what_was_typed(clerk):
    typed = {
        "buyer_name": "张三",
        "buyer_tax_id": RESIDENT_ID,
        "buyer_phone": "13800138000",
        "action": "review",
    }
    response = clerk.post("/invoices/new/", typed)
    assert response.status_code == 200 and RESIDENT_ID in response.content.decode()
    assert _no_store(response)


def test_the_claim_edit_page_of_an_individuals_invoice(clerk, client_for):
    number = f"{timezone.localdate().year % 100:02d}110{999_999_999_995_000:015d}"
    claim = claim_for(number, timezone.localdate().isoformat())
    claim["buyer"] = {"name": "张三", "tax_id": RESIDENT_ID}
    case = post(client_for("clerk"), "/api/v1/cases", claim).json()
    response = clerk.get(f"/cases/{case['case_id']}/edit/")
    assert response.status_code == 200 and RESIDENT_ID in response.content.decode()
    assert _no_store(response)


def test_the_api_reveal_still_says_no_store(client_for, valid_invoice):
    clerk = client_for("clerk")
    body = {**valid_invoice, "buyer": {"name": "张三", "tax_id": RESIDENT_ID, "phone": "13800138000"}}
    number = post(clerk, "/api/v1/invoices", body).json()["number"]
    response = clerk.get(f"/api/v1/invoices/{number}", {"reveal": "true"})
    assert response.status_code == 200 and response.json()["buyer"]["tax_id"] == RESIDENT_ID
    assert response["Cache-Control"] == "no-store"


def test_masked_pages_are_not_marked(clerk, entry):
    """The rule follows the data: the address book's list shows masked values only."""
    response = clerk.get("/address-book/")
    assert response.status_code == 200 and RESIDENT_ID not in response.content.decode()
    assert not _no_store(response)
