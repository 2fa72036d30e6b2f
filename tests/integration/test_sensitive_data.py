"""Sensitive party data: encrypted at rest, masked by default, revealed only with the permission
(audited), searchable through the blind index, re-keyed by `fapiao keys rotate-data`."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from fapiao.audit.models import AuditRecord
from fapiao.core.fieldcrypt import DecryptionError, key_version_of
from fapiao.invoices import sensitive
from fapiao.invoices.models import Invoice
from fapiao.ledger.verify import verify_ledger
from fapiao.platform import datakeys
from fapiao.platform.models import IdempotencyRecord

pytestmark = pytest.mark.django_db

RESIDENT_ID = "11010519491231002X"
PERSON = {
    "name": "张三",
    "tax_id": RESIDENT_ID,
    "address": "北京市朝阳区建国路88号院3号楼",
    "phone": "13812345678",
    "bank": "中国工商银行北京国贸支行",
    "bank_account": "6222021234567890128",
}


@pytest.fixture(autouse=True)
def _own_keys(settings: Any, tmp_path: Path) -> None:
    """Data keys and witness of this test only (rotation adds key versions)."""
    settings.KEYS_DIR = tmp_path / "keys"
    settings.FAPIAO_WITNESS_FILE = tmp_path / "witness" / "heads.jsonl"


def post(client: Any, path: str, body: object, **headers: str) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json", headers=headers)


def issue_to_person(client: Any, valid_invoice: dict[str, Any], **headers: str) -> dict[str, Any]:
    valid_invoice["buyer"] = dict(PERSON)
    response = post(client, "/api/v1/invoices", valid_invoice, **headers)
    assert response.status_code == 201, response.content
    body: dict[str, Any] = response.json()
    return body


def raw_row(number: str) -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {Invoice._meta.db_table} WHERE number = %s", [number])  # noqa: S608
        names = [column[0] for column in cursor.description]
        row = cursor.fetchone()
    return dict(zip(names, row, strict=True))


def test_sensitive_fields_are_stored_encrypted_and_answered_masked(client_for, valid_invoice):
    body = issue_to_person(client_for("clerk"), valid_invoice)
    assert body["buyer"] == {
        "name": "张三",
        "tax_id": "110***********002X",
        "address": "北京市*********院3号楼",
        "phone": "138****5678",
        "bank": "中国工*****国贸支行",
        "bank_account": "622************0128",
    }
    row = raw_row(body["number"])
    text = json.dumps(
        {k: repr(bytes(v)) if isinstance(v, bytes | memoryview) else str(v) for k, v in row.items()},
        ensure_ascii=False,
    )
    for value in PERSON.values():
        if value != "张三":
            assert value not in text
    assert row["buyer_tax_id"] == "" and row["buyer_tax_id_kind"] == "resident_id"
    assert len(row["buyer_tax_id_index"]) == 32
    for column in sensitive.ENCRYPTED_COLUMNS:
        blob = bytes(row[column])
        assert blob[0] == 1 and key_version_of(blob) == row["data_key_version"]
    assert "buyer_phone" not in row and "buyer_seal_salt" not in row


def test_each_value_gets_a_fresh_nonce(client_for, valid_invoice):
    client = client_for("clerk")
    first = raw_row(issue_to_person(client, valid_invoice)["number"])
    second = raw_row(issue_to_person(client, valid_invoice)["number"])
    assert bytes(first["buyer_phone_enc"]) != bytes(second["buyer_phone_enc"])
    assert first["buyer_tax_id_index"] == second["buyer_tax_id_index"]


def test_a_ciphertext_moved_to_another_row_or_field_does_not_decrypt(client_for, valid_invoice):
    client = client_for("clerk")
    one = Invoice.objects.get(number=issue_to_person(client, valid_invoice)["number"])
    other = Invoice.objects.get(number=issue_to_person(client, valid_invoice)["number"])
    Invoice.objects.filter(pk=other.pk).update(buyer_phone_enc=one.buyer_phone_enc)
    other.refresh_from_db()
    with pytest.raises(DecryptionError):
        sensitive.reveal_buyer(other)
    Invoice.objects.filter(pk=one.pk).update(buyer_phone_enc=one.buyer_address_enc)
    one.refresh_from_db()
    with pytest.raises(DecryptionError):
        sensitive.reveal_buyer(one)
    report = verify_ledger()
    unreadable = [f for f in report.all_findings() if f.variant == "unreadable"]
    assert {f.number for f in unreadable} == {one.number, other.number}


def test_reveal_needs_the_permission_and_is_audited(client_for, valid_invoice):
    number = issue_to_person(client_for("clerk"), valid_invoice)["number"]
    revealed = client_for("madmin", "read").get(f"/api/v1/invoices/{number}", {"reveal": "true"})
    assert revealed.status_code == 200 and revealed["Cache-Control"] == "no-store"
    assert revealed.json()["buyer"] == PERSON
    record = AuditRecord.objects.get(action="invoice.reveal")
    assert record.actor_username == "madmin"
    assert record.after == {"fields": ["tax_id", "address", "phone", "bank", "bank_account"]}
    assert client_for("auditor", "read").get(f"/api/v1/invoices/{number}?reveal=true").status_code == 403
    assert client_for("clerk2", "read").get(f"/api/v1/invoices/{number}?reveal=true").status_code == 404
    assert AuditRecord.objects.filter(action="invoice.reveal").count() == 1
    masked = client_for("auditor", "read").get(f"/api/v1/invoices/{number}").json()
    assert masked["buyer"]["phone"] == "138****5678"


def test_search_by_an_individuals_id_uses_the_blind_index(client_for, valid_invoice):
    client = client_for("clerk")
    number = issue_to_person(client, valid_invoice)["number"]
    full_width = RESIDENT_ID.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789X"})
    for term in (RESIDENT_ID, RESIDENT_ID.lower(), full_width, "张"):
        found = client.get("/api/v1/invoices", {"buyer": term}).json()
        assert [item["number"] for item in found["items"]] == [number], term
    assert client.get("/api/v1/invoices", {"buyer": RESIDENT_ID[:10]}).json()["total"] == 0
    other = client_for("clerk2", "read").get("/api/v1/invoices", {"buyer": RESIDENT_ID}).json()
    assert other["total"] == 0


def test_organisations_tax_ids_stay_plain_and_searchable(client_for, valid_invoice):
    client = client_for("clerk")
    body = post(client, "/api/v1/invoices", valid_invoice).json()
    assert body["buyer"]["tax_id"] == "91110000MA01XKQ2TQ"
    assert raw_row(body["number"])["buyer_tax_id"] == "91110000MA01XKQ2TQ"
    assert client.get("/api/v1/invoices", {"buyer": "91110000ma01xkq2tq"}).json()["total"] == 1


def test_red_letter_re_encrypts_for_its_own_row_and_the_ledger_verifies(client_for, valid_invoice):
    client = client_for("clerk")
    blue = issue_to_person(client, valid_invoice)
    red = post(client, f"/api/v1/invoices/{blue['number']}/red-letter", {"full": True}).json()
    assert red["buyer"] == blue["buyer"]
    rows = {number: Invoice.objects.get(number=number) for number in (blue["number"], red["number"])}
    assert rows[blue["number"]].uid != rows[red["number"]].uid
    assert bytes(rows[blue["number"]].buyer_phone_enc) != bytes(rows[red["number"]].buyer_phone_enc)
    assert sensitive.seal_salt(rows[blue["number"]]) == sensitive.seal_salt(rows[red["number"]])
    assert client.get(f"/api/v1/invoices/{red['number']}?reveal=true").json()["buyer"] == PERSON
    report = verify_ledger()
    assert report.ok, [f.message_en for f in report.all_findings()]


def test_idempotency_records_hold_no_plaintext(client_for, valid_invoice):
    client = client_for("clerk")
    first = issue_to_person(client, valid_invoice, **{"Idempotency-Key": "sensitive-1"})
    again = post(client, "/api/v1/invoices", valid_invoice, **{"Idempotency-Key": "sensitive-1"})
    assert again.json() == first
    stored = IdempotencyRecord.objects.get(key="sensitive-1")
    text = json.dumps(stored.body, ensure_ascii=False) + stored.request_hash
    for value in PERSON.values():
        if value != "张三":
            assert value not in text


def test_rotate_data_re_encrypts_in_resumable_batches(client_for, valid_invoice, monkeypatch):
    client = client_for("clerk")
    numbers = [issue_to_person(client, valid_invoice)["number"] for _ in range(5)]
    post(client, "/api/v1/invoices", {**valid_invoice, "buyer": {"name": "无敏感信息的买方"}})
    assert set(Invoice.objects.values_list("data_key_version", flat=True)) == {1, None}

    real = sensitive._reencrypt
    calls = {"n": 0}

    def crash_on_the_third_row(invoice: Invoice, ring: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the operator's Ctrl-C, mid-batch
        real(invoice, ring)

    monkeypatch.setattr(sensitive, "_reencrypt", crash_on_the_third_row)
    with pytest.raises(KeyboardInterrupt):
        call_command("keys", "rotate-data", "--batch-size", "2", stdout=io.StringIO(), stderr=io.StringIO())
    assert sorted(
        Invoice.objects.exclude(data_key_version=None).values_list("data_key_version", flat=True)
    ) == [
        1,
        1,
        1,
        2,
        2,
    ]
    monkeypatch.setattr(sensitive, "_reencrypt", real)

    out = io.StringIO()
    call_command("keys", "rotate-data", "--batch-size", "2", stdout=out, stderr=io.StringIO())
    assert "Resuming" in out.getvalue() or "3" in out.getvalue()
    assert set(Invoice.objects.exclude(data_key_version=None).values_list("data_key_version", flat=True)) == {
        2
    }
    assert datakeys.keyring().versions == [1, 2] and datakeys.keyring().current == 2

    for number in numbers:
        assert client.get(f"/api/v1/invoices/{number}?reveal=true").json()["buyer"] == PERSON
    assert verify_ledger().ok
    rotations = AuditRecord.objects.filter(action="keys.rotate_data").order_by("id")
    assert [row.after for row in rotations] == [{"version": 2, "rows": 3, "resumed": True}]

    call_command("keys", "rotate-data", "--resume", stdout=io.StringIO(), stderr=io.StringIO())
    assert datakeys.keyring().current == 2  # --resume never adds a key
    call_command("keys", "rotate-data", stdout=io.StringIO(), stderr=io.StringIO())
    assert datakeys.keyring().current == 3
    assert set(Invoice.objects.exclude(data_key_version=None).values_list("data_key_version", flat=True)) == {
        3
    }


def test_rotate_data_re_encrypts_the_address_book_too(demo, client_for, valid_invoice):
    from fapiao.catalogue import services as catalogue
    from fapiao.catalogue.models import Buyer

    issue_to_person(client_for("clerk"), valid_invoice)
    fields = {name: PERSON[name] for name in ("tax_id", "address", "phone", "bank", "bank_account")}
    entry = catalogue.save_buyer(user=demo["clerk"], data=catalogue.BuyerInput(name=PERSON["name"], **fields))
    before = Buyer.objects.get(pk=entry.pk)
    assert before.data_key_version == 1

    out = io.StringIO()
    call_command("keys", "rotate-data", "--batch-size", "1", stdout=out, stderr=io.StringIO())
    after = Buyer.objects.get(pk=entry.pk)
    assert after.data_key_version == 2
    assert key_version_of(bytes(after.address_enc)) == 2
    assert bytes(after.address_enc) != bytes(before.address_enc)
    assert catalogue.reveal_buyer(user=demo["clerk"], buyer_id=entry.pk) == {
        "name": PERSON["name"],
        "email": "",
        **fields,
    }
    rotation = AuditRecord.objects.get(action="keys.rotate_data")
    assert rotation.after == {"version": 2, "rows": 2, "resumed": False}  # the invoice and the entry
    assert "已重新加密 2 行" in out.getvalue()


def test_a_waiting_batch_row_keeps_an_id_number_only_encrypted(demo):
    """A spreadsheet row is kept from preview until it is issued: its buyer's ID number is
    never in the table in plaintext, survives a data-key rotation, and is issued intact."""
    import csv

    from fapiao.catalogue.models import BatchRow
    from fapiao.formats.batch import EXAMPLE, HEADER
    from fapiao.invoices import batches

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerows([HEADER, ["张三", RESIDENT_ID, *EXAMPLE[2:]]])
    batch = batches.create_batch(user=demo["clerk"], filename="个人.csv", data=out.getvalue().encode())
    row = BatchRow.objects.get(batch=batch)
    assert row.status == "ready" and row.data_key_version == 1 and row.payload == {}
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {BatchRow._meta.db_table}")  # noqa: S608
        stored = repr(cursor.fetchall())
    assert RESIDENT_ID not in stored

    call_command("keys", "rotate-data", stdout=io.StringIO(), stderr=io.StringIO())
    assert BatchRow.objects.get(pk=row.pk).data_key_version == 2

    batches.issue_step(user=demo["clerk"], public_id=str(batch.public_id))
    row = BatchRow.objects.get(pk=row.pk)
    assert row.status == "issued" and row.payload_enc is None and row.data_key_version is None
    invoice = Invoice.objects.get(number=row.invoice_number)
    assert sensitive.reveal_buyer(invoice).tax_id.value == RESIDENT_ID


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_batch_rows_waiting_before_it(demo) -> None:
    from django.db.migrations.executor import MigrationExecutor

    from fapiao.catalogue.models import BatchRow
    from fapiao.catalogue.sensitive import opened_payload

    before = [("catalogue", "0002_encrypt_address_book")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old_apps = executor.loader.project_state(before).apps
    batch = old_apps.get_model("catalogue", "Batch").objects.create(
        merchant_id=demo["clerk"].merchant_id,
        created_by_id=demo["clerk"].pk,
        filename="旧.csv",
        file_sha256="0" * 64,
    )
    payload = {"kind": "ordinary", "buyer": {"name": "张三", "tax_id": RESIDENT_ID}, "lines": []}
    rows = old_apps.get_model("catalogue", "BatchRow").objects
    rows.create(merchant_id=batch.merchant_id, batch=batch, row_no=2, status="ready", payload=payload)
    rows.create(merchant_id=batch.merchant_id, batch=batch, row_no=3, status="issued", payload={})

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    waiting, issued = BatchRow.objects.order_by("row_no")
    assert waiting.payload == {} and waiting.data_key_version == 1
    assert opened_payload(waiting) == payload
    assert issued.payload_enc is None and issued.data_key_version is None


SOLE_TRADER = "11010519491231002X01"  # a 个体工商户's old number: its operator's ID number + 2 digits


def issue_to_sole_trader(client: Any, valid_invoice: dict[str, Any]) -> str:
    valid_invoice["kind"] = "special"  # a 个体工商户 may receive one, unlike an individual
    valid_invoice["buyer"] = {"name": "北京市朝阳区张三便利店", "tax_id": SOLE_TRADER}
    response = post(client, "/api/v1/invoices", valid_invoice)
    assert response.status_code == 201, response.content
    number: str = response.json()["number"]
    return number


def test_an_old_sole_trader_number_is_sealed_like_an_id_number(client_for, valid_invoice):
    from fapiao.core.masking import mask
    from fapiao.ledger.models import LogEntry

    clerk = client_for("clerk")
    number = issue_to_sole_trader(clerk, valid_invoice)
    body = bytes(LogEntry.objects.get(invoice_number=number).body)
    assert RESIDENT_ID.encode() not in body  # the operator's ID is nowhere in the permanent log
    buyer = json.loads(body)["invoice"]["buyer"]
    assert buyer["tax_id"] is None and len(buyer["sealed"]) == 64
    assert RESIDENT_ID not in repr(raw_row(number))
    assert clerk.get(f"/api/v1/invoices/{number}").json()["buyer"]["tax_id"] == mask(SOLE_TRADER)
    assert clerk.get(f"/api/v1/invoices/{number}?reveal=true").json()["buyer"]["tax_id"] == SOLE_TRADER
    assert verify_ledger().ok


def test_the_address_book_keeps_an_old_sole_trader_number_encrypted(demo):
    from fapiao.catalogue import services as catalogue
    from fapiao.catalogue.models import Buyer
    from fapiao.core.masking import mask

    data = catalogue.BuyerInput(name="北京市朝阳区张三便利店", tax_id=SOLE_TRADER)
    entry = Buyer.objects.get(pk=catalogue.save_buyer(user=demo["clerk"], data=data).pk)
    assert entry.tax_id == "" and entry.tax_id_enc is not None
    assert entry.masked["tax_id"] == mask(SOLE_TRADER)
    assert catalogue.reveal_buyer(user=demo["clerk"], buyer_id=entry.pk)["tax_id"] == SOLE_TRADER


def test_an_invoice_stored_before_such_numbers_were_sealed_still_verifies(
    client_for, valid_invoice, monkeypatch
):
    """Rows keep the form they were stored in: the ledger can't be rewritten, so verify rebuilds
    an old row's entry as it was written, with the number in the clear."""
    from fapiao.core import invoice_document
    from fapiao.core.identifiers import TaxIdKind
    from fapiao.ledger.models import LogEntry

    def old_rule(kind: TaxIdKind) -> bool:
        return kind is TaxIdKind.RESIDENT_ID

    monkeypatch.setattr(invoice_document, "holds_resident_id", old_rule)
    monkeypatch.setattr(sensitive, "holds_resident_id", old_rule)
    clerk = client_for("clerk")
    number = issue_to_sole_trader(clerk, valid_invoice)
    monkeypatch.undo()

    buyer = json.loads(bytes(LogEntry.objects.get(invoice_number=number).body))["invoice"]["buyer"]
    assert buyer["tax_id"] == SOLE_TRADER
    assert clerk.get(f"/api/v1/invoices/{number}").json()["buyer"]["tax_id"] == SOLE_TRADER
    report = verify_ledger()
    assert report.ok, report.to_json("en")


def test_the_key_file_is_0600_and_refused_when_others_can_read_it(client_for, valid_invoice, settings):
    issue_to_person(client_for("clerk"), valid_invoice)
    path = Path(settings.KEYS_DIR) / "data-keys.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    document = json.loads(path.read_text())
    assert document["format"] == "fapiao-data-keys/1" and document["current"] == 1
    os.chmod(path, 0o644)
    os.utime(path, ns=(1, 1))  # a new stat signature: the cached keyring is dropped
    datakeys.forget_cached()
    with pytest.raises(datakeys.DataKeyError):
        datakeys.keyring()


def test_keys_from_the_environment(client_for, valid_invoice, settings):
    document = datakeys.new_document()
    settings.FAPIAO_DATA_KEYS = json.dumps(document)
    number = issue_to_person(client_for("clerk"), valid_invoice)["number"]
    assert not (Path(settings.KEYS_DIR) / "data-keys.json").exists()
    assert client_for("clerk").get(f"/api/v1/invoices/{number}?reveal=true").json()["buyer"] == PERSON
    with pytest.raises(CommandError, match="FAPIAO_DATA_KEYS"):
        call_command("keys", "rotate-data", stdout=io.StringIO(), stderr=io.StringIO())
    settings.FAPIAO_DATA_KEYS = json.dumps(datakeys.new_document())  # other keys: nothing decrypts
    with pytest.raises(DecryptionError):
        sensitive.reveal_buyer(Invoice.objects.get(number=number))


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_rows_written_before_it() -> None:
    """Going forward from 0001 turns plaintext columns into ciphertexts; going back restores them."""
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate([("invoices", "0001_initial")])
    old_apps = executor.loader.project_state([("invoices", "0001_initial")]).apps
    from fapiao.accounts.models import Merchant, User  # accounts stays migrated

    merchant = Merchant.objects.create(uscc="91110108MA01ABCD84", name="示例")
    user = User.objects.create(username="old-clerk", role="clerk", merchant=merchant)
    old_apps.get_model("invoices", "Invoice").objects.create(
        merchant_id=merchant.pk,
        number="26110100000000000001",
        kind="ordinary",
        colour="blue",
        issued_on="2026-01-05",
        issued_at="2026-01-05T01:00:00Z",
        seller_name="示例",
        seller_tax_id="91110108MA01ABCD84",
        buyer_name="张三",
        buyer_tax_id=RESIDENT_ID,
        buyer_tax_id_kind="resident_id",
        buyer_phone="13812345678",
        buyer_seal_salt=b"0123456789abcdef",
        total_amount=100,
        total_tax=6,
        total_with_tax=106,
        created_by_id=user.pk,
    )
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    invoice = Invoice.objects.get(number="26110100000000000001")
    assert invoice.buyer_tax_id == "" and invoice.buyer_masked["phone"] == "138****5678"
    buyer = sensitive.reveal_buyer(invoice)
    assert (buyer.tax_id and buyer.tax_id.value, buyer.phone) == (RESIDENT_ID, "13812345678")
    assert sensitive.seal_salt(invoice) == b"0123456789abcdef"
    executor = MigrationExecutor(connection)
    executor.migrate([("invoices", "0001_initial")])
    back = executor.loader.project_state([("invoices", "0001_initial")]).apps.get_model("invoices", "Invoice")
    row = back.objects.get(number="26110100000000000001")
    assert (row.buyer_tax_id, row.buyer_phone, bytes(row.buyer_seal_salt)) == (
        RESIDENT_ID,
        "13812345678",
        b"0123456789abcdef",
    )
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
