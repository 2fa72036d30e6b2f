"""Words and messages (issue 14): forms say what their help text says, an empty required input says
此项不能为空, a 补正 mail carries its checklist and deadline, and a production server without
FAPIAO_PUBLIC_URL says so at start."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from django.apps import apps
from django.core import mail
from django.test import Client
from django.utils import timezone

from fapiao.accounts.demo import USERS
from fapiao.invoices.models import Invoice
from fapiao.platform.checks import public_url
from fapiao.recovery import selectors
from fapiao.recovery.models import Case
from tests.integration.case_helpers import act, claim_for, post
from tests.integration.test_web_translations import english_words

pytestmark = pytest.mark.django_db(transaction=True)

NUMBER = f"{timezone.localdate().year % 100:02d}110{999_999_999_998_001:015d}"


def browser(demo: dict[str, Any], name: str) -> Client:
    client = Client()
    client.force_login(demo[name])
    return client


def claim_form(**changes: str) -> dict[str, str]:
    data = {
        "number": NUMBER,
        "issued_on": timezone.localdate().isoformat(),
        "buyer_name": "北京买方贸易有限公司",
        "buyer_tax_id": "",
        "total_with_tax": "1,060.00",
        "total_amount": "",
        "total_tax": "",
        "tax_rate": "",
        "kind": "",
        "narrative": "上传中断。",
    }
    return {**data, **changes}


def test_an_empty_required_input_says_it_cannot_be_empty(demo):
    html = (
        browser(demo, "clerk").post("/cases/new/", claim_form(buyer_name="", narrative="")).content.decode()
    )
    assert html.count("此项不能为空。") >= 2
    assert "此项为必填项" not in html
    assert not Case.objects.exists()


def test_an_amount_error_agrees_with_the_help_text(demo):
    clerk = browser(demo, "clerk")
    html = clerk.post("/cases/new/", claim_form(total_with_tax="1,060.00x")).content.decode()
    assert "请填写金额，例如 1,000.00 或 1000。" in html
    assert "千位分隔符" not in html  # the API's wording would contradict "1,000.00 is accepted"
    assert not Case.objects.exists()
    # As the help says, 1,060.00 is accepted.
    assert clerk.post("/cases/new/", claim_form()).status_code == 302
    assert Case.objects.get().claimed_total_with_tax == 106_000


def test_the_api_keeps_its_strict_wording(client_for):
    clerk = client_for("clerk")
    body = post(
        clerk, "/api/v1/cases", claim_for(NUMBER, timezone.localdate().isoformat(), total_with_tax="1,060.00")
    )
    assert body.status_code == 422
    [error] = body.json()["errors"]
    assert error["field"] == "total_with_tax" and "“1000.00”" in error["message"]


def test_a_correction_mail_carries_the_checklist_and_the_deadline(client_for, settings):
    clerk, support = client_for("clerk"), client_for("support")
    case = post(clerk, "/api/v1/cases", claim_for(NUMBER, timezone.localdate().isoformat())).json()
    case = act(clerk, case, "submit")
    mail.outbox.clear()
    case = act(support, case, "request-info", body="请补充以下材料。", items=["银行回单", "合同复印件"])
    [sent] = [m for m in mail.outbox if "clerk@example.com" in m.to]
    assert "请补充以下材料。" in sent.body
    assert "☐ 银行回单" in sent.body and "☐ 合同复印件" in sent.body
    due = selectors.due_at(Case.objects.get(uid=case["case_id"]))
    assert due is not None
    assert f"请于 {timezone.localtime(due):%Y-%m-%d %H:%M}（北京时间）前答复。" in sent.body
    assert settings.FAPIAO_PUBLIC_URL + "/cases/" in sent.body


def test_a_production_server_without_a_public_url_warns(settings, caplog):
    settings.PRODUCTION = True
    settings.PUBLIC_URL_GIVEN = False
    [warning] = public_url()
    assert warning.id == "fapiao.W002" and "FAPIAO_PUBLIC_URL" in warning.msg
    with caplog.at_level(logging.WARNING, logger="fapiao.startup"):
        apps.get_app_config("platform").ready()
    assert any("FAPIAO_PUBLIC_URL is not set" in r.getMessage() for r in caplog.records)
    settings.PUBLIC_URL_GIVEN = True
    assert public_url() == []
    settings.PRODUCTION, settings.PUBLIC_URL_GIVEN = False, False
    assert public_url() == []


def test_the_login_page_names_every_demo_user(demo, settings):
    settings.DEMO = True
    html = Client().get("/login/").content.decode()
    for username, _role, _merchant, *_rest in USERS:
        assert f"<code>{username}</code>" in html, username
    assert "北京另一家商贸有限公司" in html  # clerk2's merchant, so the two clerks are told apart


def test_support_and_reviewer_homes_show_their_queues_with_counts(demo, client_for):
    clerk = client_for("clerk")
    for offset in (1, 2):
        number = f"{timezone.localdate().year % 100:02d}110{999_999_999_998_100 + offset:015d}"
        act(
            clerk,
            post(clerk, "/api/v1/cases", claim_for(number, timezone.localdate().isoformat())).json(),
            "submit",
        )
    support = browser(demo, "support").get("/").content.decode()
    assert "待办工作" in support and "等待受理的新申请" in support
    assert re.search(
        r'href="/cases/\?state=submitted">等待受理的新申请</a> <span class="badge">2</span>', support
    )
    assert "/cases/register/" in support
    reviewer = browser(demo, "reviewer").get("/").content.decode()
    assert re.search(r'href="/cases/\?assignee=none">[^<]+</a> <span class="badge">2</span>', reviewer)
    assert re.search(
        r'href="/cases/\?assignee=me">[^<]+</a> <span class="badge badge-zero">0</span>', reviewer
    )
    assert "待办工作" not in browser(demo, "clerk").get("/").content.decode()
    assert "待办工作" not in browser(demo, "auditor").get("/").content.decode()


def test_the_guide_covers_issuing_searching_red_letter_batches_and_receipts(db):
    html = Client().get("/cases/guide/invoices/").content.decode()
    for heading in ("开具发票", "查询发票", "红冲发票", "批量开具", "保存回执"):
        assert f">{heading}</h2>" in html, heading
    assert english_words(html) == []
    assert "/cases/guide/invoices/" in Client().get("/cases/guide/").content.decode()


def test_voided_is_offered_only_to_whom_has_voided_paper_invoices(demo, client_for, valid_invoice):
    """作废 is a paper invoice's state; a fully digital invoice is red-lettered, never voided."""
    clerk = browser(demo, "clerk")
    number = post(client_for("clerk"), "/api/v1/invoices", valid_invoice).json()["number"]
    assert 'value="voided"' not in clerk.get("/invoices/").content.decode()
    Invoice.objects.filter(number=number).update(state="voided", origin="imported")  # an imported paper one
    assert 'value="voided"' in clerk.get("/invoices/").content.decode()
    assert 'value="voided"' not in browser(demo, "clerk2").get("/invoices/").content.decode()


def test_the_tax_code_picker_offers_the_shipped_codes_and_the_catalogue_s(demo):
    clerk = browser(demo, "clerk")
    html = clerk.get("/invoices/new/").content.decode()
    assert '<datalist id="tax-code-list"' in html and 'list="tax-code-list"' in html
    assert '<option value="3040201000000000000">软件服务</option>' in html
    assert "国家税务总局《商品和服务税收分类编码表》" in html
    product = browser(demo, "clerk").get("/products/new/").content.decode()
    assert 'list="tax-code-list"' in product and '<option value="6000000000000000000">' in product
