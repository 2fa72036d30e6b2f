"""Issue 13 finding 4: every upload path puts archives through one guard; a zip bomb is refused
quickly, with a specific message, and nothing of it is stored.

The paths: batch issuing (an XLSX), evidence on a case (an XLSX, a zip, an OFD), an e-mail
imported by support (an archive attached to it) and scans registered as mailed in.
"""

from __future__ import annotations

import hashlib
import io
import re
import time
from email.message import EmailMessage
from html import unescape
from typing import Any

import pytest
from django.test import Client

from fapiao.catalogue.models import Batch
from fapiao.core.errors import ValidationFailed
from fapiao.recovery import mailin
from fapiao.recovery.models import Case, CaseMessage, Evidence
from fapiao.recovery.storage import blob_name, evidence_storage
from tests.integration.case_helpers import act, claim_for, fetch, post
from tests.zipbombs import MIB, xlsx_bomb

pytestmark = pytest.mark.django_db(transaction=True)

BOMB = xlsx_bomb(1390 * MIB)  # the size of the one in the report: 3.6 MB unpacking to 1.39 GB


def named(data: bytes, name: str) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def stored(data: bytes) -> bool:
    return bool(evidence_storage().exists(blob_name(hashlib.sha256(data).hexdigest())))


def mail_with(attachment: bytes, name: str = "银行流水.xlsx") -> bytes:
    message = EmailMessage()
    message["From"], message["Subject"] = "zhang.san@example.cn", "流水"
    message["Date"] = "Tue, 24 Nov 2026 10:15:00 +0800"
    message.set_content("流水见附件")
    message.add_attachment(attachment, maintype="application", subtype="octet-stream", filename=name)
    return message.as_bytes()


@pytest.fixture
def case(client_for: Any) -> Case:
    clerk = client_for("clerk")
    opened = post(clerk, "/api/v1/cases", claim_for("26110100000000009999", "2026-01-05")).json()
    act(clerk, fetch(clerk, opened), "submit")
    return Case.objects.get(uid=opened["case_id"])


def browser(demo: dict[str, Any], name: str) -> Client:
    client = Client()
    client.force_login(demo[name])
    return client


def field_error(html: str, name: str = "file") -> str:
    found = re.search(rf'<p class="field-error" id="f-{name}-error">(.*?)</p>', html, re.S)
    assert found, html[:3000]
    return unescape(found.group(1))


def timed(call: Any) -> Any:
    started = time.perf_counter()
    result = call()
    assert time.perf_counter() - started < 3, "the guard refuses a bomb from its directory, at once"
    return result


def test_a_bomb_as_evidence_is_a_422_naming_the_part_and_nothing_is_stored(client_for, case):
    clerk = client_for("clerk")
    response = timed(
        lambda: clerk.post(
            f"/api/v1/cases/{case.uid}/evidence",
            data={"type": "bank_statement", "file": named(BOMB, "流水.xlsx")},
        )
    )
    assert response.status_code == 422, response.content.decode()
    (error,) = response.json()["errors"]
    assert (error["field"], error["code"]) == ("file", "zip_bomb")
    assert "xl/sharedStrings.xml" in error["message"] and "100" in error["message"]
    assert not Evidence.objects.filter(case=case).exists()
    assert not stored(BOMB)


def test_a_mail_carrying_a_bomb_is_refused_at_upload_and_at_import(demo, case):
    data = mail_with(BOMB)
    support = browser(demo, "support")
    page = timed(lambda: support.post(f"/cases/{case.uid}/email/", {"file": named(data, "流水.eml")}))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="token"' not in html  # no preview: the mail was not held
    assert "银行流水.xlsx" in field_error(html)
    assert not stored(data)

    with pytest.raises(ValidationFailed) as refused:
        mailin.import_email(
            user=demo["support"], case=case, filename="流水.eml", data=data, sender=demo["clerk"]
        )
    assert [(e.field, e.code, e.params) for e in refused.value.errors] == [
        ("file", "evidence_attachment_unsafe", {"attachment": "银行流水.xlsx"})
    ]
    assert not Evidence.objects.filter(case=case).exists()
    assert not CaseMessage.objects.filter(case=case).exists()
    assert not stored(data)


def test_a_bomb_among_mailed_in_scans_stores_none_of_them(demo, case):
    scan = b"%PDF-1.4\n" + b"scan " * 100 + b"\n%%EOF\n"
    with pytest.raises(ValidationFailed) as refused:
        mailin.register_mail_in(
            user=demo["support"],
            case=case,
            files=[("scan.pdf", scan), ("scans.zip", BOMB)],
            evidence_type="other",
            received_on="2026-01-06",
        )
    assert [(e.field, e.code) for e in refused.value.errors] == [("files.1", "zip_bomb")]
    assert not Evidence.objects.filter(case=case).exists()
    assert not stored(BOMB)


def test_a_bomb_as_a_batch_file_is_a_message_beside_the_field(demo):
    clerk = browser(demo, "clerk")
    response = timed(lambda: clerk.post("/invoices/batch/", {"file": named(BOMB, "batch.xlsx")}))
    assert response.status_code == 200
    error = field_error(response.content.decode())
    assert "xl/sharedStrings.xml" in error and "100" in error
    assert not Batch.objects.exists()


def test_the_limits_are_settings(demo, settings):
    settings.FAPIAO_ZIP_MAX_ENTRIES = 3  # the template has 9 parts
    clerk = browser(demo, "clerk")
    template = clerk.get("/invoices/batch/template.xlsx").content
    html = clerk.post("/invoices/batch/", {"file": named(template, "batch.xlsx")}).content.decode()
    assert "3" in field_error(html) and not Batch.objects.exists()
    settings.FAPIAO_ZIP_MAX_ENTRIES = 10_000  # the template passes, and has no rows to issue
    html = clerk.post("/invoices/batch/", {"file": named(template, "batch.xlsx")}).content.decode()
    assert field_error(html) == "文件只有表头，没有要开具的数据行。"
