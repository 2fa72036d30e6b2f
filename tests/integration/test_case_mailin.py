"""Evidence that reaches a case by e-mail (an uploaded ``.eml``, GBK and UTF-8) or by post (scans
registered by support): the pages, the service, what the case shows, and the refusals."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core import signing
from django.test import Client
from django.utils import timezone

from fapiao.accounts.models import User
from fapiao.audit.models import AuditRecord
from fapiao.core.errors import PermissionDeniedError, ValidationFailed
from fapiao.recovery import mailin
from fapiao.recovery.models import Case, CaseEvent, CaseMessage, Evidence
from tests.integration.case_helpers import PNG, act, claim_for, fetch, pdf_named, post

pytestmark = pytest.mark.django_db(transaction=True)

EML = Path(__file__).parents[1] / "unit" / "fixtures" / "eml"


@pytest.fixture
def case(client_for: Any) -> Case:
    """A submitted case of the clerk's merchant (evidence is only taken once it is submitted)."""
    clerk = client_for("clerk")
    opened = post(clerk, "/api/v1/cases", claim_for("26110100000000009999", "2026-01-05")).json()
    act(clerk, fetch(clerk, opened), "submit")
    return Case.objects.get(uid=opened["case_id"])


def _browser(demo: dict[str, Any], name: str) -> Client:
    client = Client()
    client.force_login(demo[name])
    return client


def _file(data: bytes, name: str) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def _read(client: Client, case: Case, fixture: str) -> tuple[str, str]:
    """Step 1: upload the mail; returns the preview page and its token."""
    data = (EML / fixture).read_bytes()
    response = client.post(f"/cases/{case.uid}/email/", {"file": _file(data, fixture)})
    assert response.status_code == 200
    page = response.content.decode()
    token = re.search(r'name="token" value="([^"]+)"', page)
    assert token, page[:3000]
    return page, token.group(1)


def test_gbk_mail_is_matched_to_the_sender_and_imported(demo, case):
    clerk = demo["clerk"]
    clerk.email = "Zhang.San@example.cn"  # the mail says Zhang.San@Example.CN: addresses match case-blind
    clerk.save(update_fields=["email"])
    support = _browser(demo, "support")
    page, token = _read(support, case, "gbk_foxmail.eml")
    assert (
        "关于发票丢失的补救申请（朱镕基路店）" in page and "合同.pdf" in page
    )  # GBK headers and names decoded
    assert re.search(r'<option translate="no" value="clerk" selected>', page)  # matched by address
    assert re.search(
        r'name="type-0"[^>]*>.*?<option value="contract" selected>', page, re.S
    )  # 合同 → contract
    assert not Evidence.objects.filter(case=case).exists()  # nothing stored before Import

    response = support.post(
        f"/cases/{case.uid}/email/",
        {"token": token, "sender": "clerk", "take-0": "on", "type-0": "contract", "record_text": "on"},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    files = {e.filename: e for e in Evidence.objects.filter(case=case)}
    assert set(files) == {"gbk_foxmail.eml", "合同.pdf"}
    assert files["gbk_foxmail.eml"].evidence_type == "email" and files["合同.pdf"].evidence_type == "contract"
    assert all(
        e.channel == "email" and e.on_behalf and e.uploaded_by.username == "support" for e in files.values()
    )
    message = CaseMessage.objects.get(case=case)
    assert message.on_behalf and "朱镕基路店的发票丢失" in message.body
    assert files["合同.pdf"].message_id == message.pk
    event = CaseEvent.objects.get(case=case, action="email")
    assert event.details["sender"] == "clerk" and event.details["address"] == "zhang.san@example.cn"
    assert event.details["files"] == ["合同.pdf"]
    assert AuditRecord.objects.filter(action="case.email").exists()

    reviewer_page = _browser(demo, "reviewer").get(f"/cases/{case.uid}/").content.decode()
    desk = reviewer_page[reviewer_page.index("desk-heading") :]
    assert "zhang.san@example.cn" in desk and "关于发票丢失的补救申请" in desk
    channel = re.search(r"<dt>[^<]+</dt><dd>([^<]*\(2\))</dd>", desk)  # files by channel: e-mail (2)
    assert channel, desk[:2000]


def test_utf8_mail_needs_a_sender_when_nobody_matches_and_reports_what_it_left_out(demo, case):
    support = _browser(demo, "support")
    page, token = _read(support, case, "utf8_alternative.eml")
    assert "补开 申请" in page and "银行流水.xlsx" in page and "li.si@example.com" in page
    form = {"token": token, "take-0": "on", "take-1": "on", "type-0": "contract", "type-1": "bank_statement"}
    response = support.post(f"/cases/{case.uid}/email/", {**form, "sender": ""})
    assert response.status_code == 200 and 'id="f-sender-error"' in response.content.decode()
    assert not Evidence.objects.filter(case=case).exists()

    response = support.post(f"/cases/{case.uid}/email/", {**form, "sender": "madmin"})
    assert response.status_code == 302
    assert {e.filename for e in Evidence.objects.filter(case=case)} == {"utf8_alternative.eml", "合同.pdf"}
    event = CaseEvent.objects.get(case=case, action="email")
    assert event.details["sender"] == "madmin"
    # The "xlsx" is a plain zip by its content: not a bank statement, so it was left out and said so.
    assert [item["file"] for item in event.details["left_out"]] == ["银行流水.xlsx"]
    shown = support.get(response["Location"]).content.decode()
    assert "银行流水.xlsx" in shown and "ZIP" in shown  # the warning after the import says why


def test_the_same_attachment_twice_is_left_out_and_the_same_mail_twice_is_refused(demo, case):
    support = _browser(demo, "support")
    for fixture in ("gbk_foxmail.eml", "utf8_alternative.eml"):  # both carry the same contract PDF
        _page, token = _read(support, case, fixture)
        form = {"token": token, "sender": "clerk", "take-0": "on", "record_text": "on"}
        assert support.post(f"/cases/{case.uid}/email/", form).status_code == 302
    assert Evidence.objects.filter(case=case, filename="合同.pdf").count() == 1
    left = CaseEvent.objects.filter(case=case, action="email").order_by("pk").last()
    assert left.details["left_out"] == [{"file": "合同.pdf", "code": "evidence_duplicate"}]

    before = Evidence.objects.filter(case=case).count()
    _page, token = _read(support, case, "gbk_foxmail.eml")
    response = support.post(
        f"/cases/{case.uid}/email/", {"token": token, "sender": "clerk", "take-0": "on", "record_text": "on"}
    )
    assert response.status_code == 200 and "error-summary" in response.content.decode()
    assert Evidence.objects.filter(case=case).count() == before
    assert CaseMessage.objects.filter(case=case).count() == 2  # the refused import left no message behind


def test_not_a_mail_and_a_token_for_another_case_are_refused(demo, case, client_for):
    support = _browser(demo, "support")
    response = support.post(f"/cases/{case.uid}/email/", {"file": _file(pdf_named("x"), "mail.eml")})
    assert response.status_code == 200 and 'id="f-file-error"' in response.content.decode()
    clerk = client_for("clerk")
    other = post(clerk, "/api/v1/cases", claim_for("26110100000000009998", "2026-01-06")).json()
    act(clerk, fetch(clerk, other), "submit")
    _page, token = _read(support, case, "gbk_foxmail.eml")
    response = support.post(f"/cases/{other['case_id']}/email/", {"token": token, "sender": "clerk"})
    assert response.status_code == 200 and 'id="f-file-error"' in response.content.decode()
    forged = signing.dumps({"case": str(case.uid), "sha256": "0" * 64, "name": "x.eml"}, salt="another salt")
    response = support.post(f"/cases/{case.uid}/email/", {"token": forged, "sender": "clerk"})
    assert response.status_code == 200
    assert not Evidence.objects.exists()


def test_only_the_desk_may_import(demo, case):
    data = (EML / "gbk_foxmail.eml").read_bytes()
    links = (f"/cases/{case.uid}/email/", f"/cases/{case.uid}/mail-in/")
    support_page = _browser(demo, "support").get(f"/cases/{case.uid}/").content.decode()
    reviewer_page = _browser(demo, "reviewer").get(f"/cases/{case.uid}/").content.decode()
    assert all(link in support_page for link in links) and not any(link in reviewer_page for link in links)
    for name in ("reviewer", "clerk", "auditor"):
        with pytest.raises(PermissionDeniedError):
            mailin.import_email(user=demo[name], case=case, filename="m.eml", data=data, sender=demo["clerk"])
        assert _browser(demo, name).get(f"/cases/{case.uid}/email/").status_code in (403, 404), name
    other_merchant_user = User.objects.get(username="clerk2")
    with pytest.raises(ValidationFailed) as refused:
        mailin.import_email(
            user=demo["support"], case=case, filename="m.eml", data=data, sender=other_merchant_user
        )
    assert refused.value.errors[0].field == "sender"


def test_mail_in_scans_are_registered_on_the_merchants_behalf(demo, case):
    support = _browser(demo, "support")
    assert 'name="received_on"' in support.get(f"/cases/{case.uid}/mail-in/").content.decode()
    response = support.post(
        f"/cases/{case.uid}/mail-in/",
        {
            "type": "stub_copy",
            "received_on": "2026-01-20",
            "note": "顺丰 SF1234567890",
            "file": [_file(pdf_named("stub-1"), "存根1.pdf"), _file(PNG, "存根2.png")],
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    scans = Evidence.objects.filter(case=case)
    assert {e.filename for e in scans} == {"存根1.pdf", "存根2.png"}
    assert all(e.channel == "mail_in" and e.on_behalf and e.evidence_type == "stub_copy" for e in scans)
    event = CaseEvent.objects.get(case=case, action="mail_in")
    assert event.details == {
        "received_on": "2026-01-20",
        "note": "顺丰 SF1234567890",
        "files": ["存根1.pdf", "存根2.png"],
    }
    page = _browser(demo, "clerk").get(f"/cases/{case.uid}/").content.decode()
    assert page.count('<span class="tag">') >= 2  # each file is marked with its channel for the merchant too
    desk = _browser(demo, "reviewer").get(f"/cases/{case.uid}/").content.decode()
    assert "SF1234567890" in desk and "2026-01-20" in desk


def test_mail_in_is_all_or_nothing_and_checks_the_date(demo, case):
    support = _browser(demo, "support")
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    response = support.post(
        f"/cases/{case.uid}/mail-in/",
        {
            "type": "contract",
            "received_on": tomorrow,
            "note": "",
            "file": [_file(pdf_named("c"), "合同.pdf")],
        },
    )
    assert response.status_code == 200 and 'id="f-received_on-error"' in response.content.decode()
    response = support.post(
        f"/cases/{case.uid}/mail-in/",
        {
            "type": "contract",
            "received_on": "2026-01-20",
            "note": "",
            "file": [_file(pdf_named("c"), "合同.pdf"), _file(b"just some words\n", "说明.txt")],
        },
    )
    page = response.content.decode()
    assert response.status_code == 200 and "说明.txt: " in page and "合同.pdf: " not in page
    assert (
        not Evidence.objects.filter(case=case).exists()
        and not CaseEvent.objects.filter(action="mail_in").exists()
    )
