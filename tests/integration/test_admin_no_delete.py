"""Nothing with legal or audit weight is deleted, not even by a superuser in Django's admin.

The admin is a read-only window: every registered model refuses add, change and delete, and the
bulk "delete selected" action is gone.  Writes go through services (checked and audited).
"""

from __future__ import annotations

import copy

import pytest
from django.contrib import admin
from django.test import Client, RequestFactory

from fapiao.accounts.models import User
from fapiao.invoices.models import Invoice
from fapiao.invoices.services import issue_invoice
from fapiao.ledger.models import LogEntry
from tests.conftest import VALID_INVOICE

pytestmark = pytest.mark.django_db

#: Models that carry legal or audit weight (docs/spec/invoices.md "Retention", §8).  Those registered in the
#: admin must refuse deletion; every app whose label is in LEGAL_APPS counts wholesale.
LEGAL_WEIGHT = {
    "invoices.Invoice",
    "invoices.InvoiceLine",
    "ledger.LogEntry",
    "ledger.LogNode",
    "ledger.TreeHead",
}
LEGAL_APPS = {"audit", "recovery", "ledger", "invoices"}


@pytest.fixture
def superuser_request(demo: dict[str, User]):  # type: ignore[no-untyped-def]
    operator = demo["operator"]
    assert operator.is_superuser and operator.is_staff
    request = RequestFactory().get("/admin/")
    request.user = operator
    return request


def registered() -> list[tuple[str, admin.ModelAdmin]]:  # type: ignore[type-arg]
    return sorted(
        ((model._meta.label, model_admin) for model, model_admin in admin.site._registry.items()),
        key=lambda item: item[0],
    )


def test_the_invoice_and_ledger_models_are_visible_in_the_admin():
    labels = {label for label, _admin in registered()}
    assert {"invoices.Invoice", "ledger.LogEntry", "ledger.TreeHead"} <= labels


def test_no_registered_model_can_be_deleted(superuser_request):
    deletable = [
        label for label, model_admin in registered() if model_admin.has_delete_permission(superuser_request)
    ]
    assert deletable == []


def test_models_with_legal_weight_refuse_deletion_of_a_real_row(superuser_request, demo):
    issue_invoice(user=demo["clerk"], payload=copy.deepcopy(VALID_INVOICE))
    for label, model_admin in registered():
        if label in LEGAL_WEIGHT or label.split(".")[0] in LEGAL_APPS:
            row = model_admin.model.objects.first()
            assert not model_admin.has_delete_permission(superuser_request, row), label


def test_the_admin_is_read_only(superuser_request):
    writable = [
        label
        for label, model_admin in registered()
        if model_admin.has_add_permission(superuser_request)
        or model_admin.has_change_permission(superuser_request)
    ]
    assert writable == []


def test_the_bulk_delete_action_is_gone(superuser_request):
    assert "delete_selected" not in dict(admin.site.actions)
    for label, model_admin in registered():
        assert "delete_selected" not in model_admin.get_actions(superuser_request), label


def test_a_superuser_cannot_delete_an_invoice_through_the_admin_urls(demo):
    number = issue_invoice(user=demo["clerk"], payload=copy.deepcopy(VALID_INVOICE)).body["number"]
    invoice = Invoice.objects.get(number=number)
    browser = Client()
    browser.force_login(demo["operator"])
    assert browser.get(f"/admin/invoices/invoice/{invoice.pk}/change/").status_code == 200  # visible
    assert browser.get(f"/admin/invoices/invoice/{invoice.pk}/delete/").status_code == 403
    assert browser.post(f"/admin/invoices/invoice/{invoice.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = browser.post(
        "/admin/invoices/invoice/",
        {"action": "delete_selected", "_selected_action": [invoice.pk], "post": "yes"},
    )
    assert bulk.status_code in {200, 302}
    changed = browser.post(f"/admin/invoices/invoice/{invoice.pk}/change/", {"remark": "edited"})
    assert changed.status_code == 403
    invoice.refresh_from_db()
    assert invoice.remark == "" and Invoice.objects.filter(pk=invoice.pk).exists()
    assert LogEntry.objects.filter(invoice_number=number).count() == 1
