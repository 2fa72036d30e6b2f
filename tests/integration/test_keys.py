"""Key custody (docs/spec/ledger.md): key files 0600, rotation, compromise, public keys."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from cryptography.hazmat.primitives import serialization
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone, translation

from fapiao.core.receipt import main as verify_main
from fapiao.core.receipt import verify_receipt
from fapiao.core.signing import KeyRegistry, read_private_key, verify_head
from fapiao.ledger.models import TreeHead
from fapiao.platform import keys

pytestmark = pytest.mark.django_db
BEIJING = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def keydir(_isolated_files: None, settings: Any, tmp_path: Path) -> Path:
    """A fresh key directory and witness file for this test only."""
    settings.KEYS_DIR = tmp_path / "keys"
    settings.FAPIAO_WITNESS_FILE = tmp_path / "witness" / "heads.jsonl"
    return tmp_path / "keys"


def issue(client: Any, invoice: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/v1/invoices", data=json.dumps(invoice), content_type="application/json")
    assert response.status_code == 201, response.content
    body: dict[str, Any] = response.json()
    return body


def run(*args: str) -> tuple[int, str, str]:
    """Run a management command; (exit status, stdout, stderr) — never a traceback."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with translation.override("en"):
            call_command(*args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    except CommandError as error:
        code = error.returncode
        err.write(str(error))
    return code, out.getvalue(), err.getvalue()


def registry() -> KeyRegistry:
    return KeyRegistry.load(keys.registry_path())


def database_dump() -> tuple[bytes, bytes]:
    """Every value of every row of every table; and on SQLite the database file's bytes."""
    parts: list[bytes] = []
    for model in apps.get_models():
        names = [f.attname for f in model._meta.concrete_fields]
        for row in model.objects.values_list(*names):
            for value in row:
                if isinstance(value, bytes | memoryview):
                    parts.append(bytes(value))
                else:
                    parts.append(str(value).encode("utf-8", "surrogatepass"))
    image = b""
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        image = connection.connection.serialize()
    return b"\n".join(parts), image


def test_key_file_is_created_0600_on_first_signing_and_never_stored_in_the_database(
    keydir, client_for, valid_invoice
):
    assert not keydir.exists() or not list(keydir.glob("*.pem"))
    body = issue(client_for("clerk"), valid_invoice)
    pems = list(keydir.glob("*.pem"))
    assert len(pems) == 1
    assert stat.S_IMODE(os.stat(pems[0]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(keydir).st_mode) == 0o700
    key = read_private_key(pems[0])
    assert pems[0].stem == key.key_id == body["receipt"]["head"]["key_id"]
    assert [r.key_id for r in registry().active()] == [key.key_id]

    seed = key.private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    pem_body = b"".join(pems[0].read_bytes().splitlines()[1:-1])
    rows, image = database_dump()
    signature = body["receipt"]["signature"].encode()
    assert signature in rows  # the scan sees the ledger's data...
    assert connection.vendor != "sqlite" or (signature in image and body["number"].encode() in image)
    for needle in (seed, seed.hex().encode(), base64.b64encode(seed), pem_body):
        assert needle not in rows  # ...but never the private key
        assert needle not in image
    # The head the database keeps is signed by that key, and verifies.
    head = TreeHead.objects.get()
    assert head.key_id == key.key_id
    assert verify_receipt(body["receipt"], registry()).ok


def test_rotate_adds_a_key_and_old_receipts_still_verify(keydir, client_for, valid_invoice, client, tmp_path):
    clerk = client_for("clerk")
    first = issue(clerk, valid_invoice)["receipt"]
    old_id = first["head"]["key_id"]

    code, out, _err = run("keys", "rotate")
    assert code == 0
    new_id = registry().active()[0].key_id
    assert new_id != old_id and new_id in out
    assert registry().get(old_id).status == "retired"
    for pem in keydir.glob("*.pem"):
        assert stat.S_IMODE(os.stat(pem).st_mode) == 0o600
    assert {p.stem for p in keydir.glob("*.pem")} == {old_id, new_id}

    second = issue(clerk, valid_invoice)["receipt"]
    assert second["head"]["key_id"] == new_id
    for receipt in (first, second):
        assert verify_receipt(receipt, registry()).ok

    served = client.get("/api/v1/ledger/public-keys").json()["keys"]
    assert {(k["key_id"], k["status"]) for k in served} == {(old_id, "retired"), (new_id, "active")}
    assert all(set(k) >= {"key_id", "public_key", "created_at", "status"} for k in served)

    code, out, _err = run("keys", "list")
    assert code == 0 and old_id in out and new_id in out
    current_line = next(line for line in out.splitlines() if line.startswith(new_id))
    assert "current" in current_line or "当前" in current_line

    exported = tmp_path / "public-keys.json"
    code, out, _err = run("keys", "export-public", str(exported))
    assert code == 0 and str(exported) in out
    assert "PRIVATE" not in exported.read_text()
    for receipt in (first, second):
        path = tmp_path / f"receipt-{receipt['index']}.json"
        path.write_text(json.dumps(receipt))
        assert verify_main(["verify", str(path), "--public-key", str(exported)]) == 0


def test_compromised_current_key_rotates_and_re_signs_later_heads(keydir, client_for, valid_invoice, client):
    clerk = client_for("clerk")
    base = timezone.now() - timedelta(hours=4)
    receipts, numbers = [], []
    for hours in (0, 1, 2):
        with time_machine.travel(base + timedelta(hours=hours), tick=False):
            body = issue(clerk, valid_invoice)
        receipts.append(body["receipt"])
        numbers.append(body["number"])
    old_id = receipts[0]["head"]["key_id"]
    before = {h.size: (h.signature, bytes(h.root), h.at) for h in TreeHead.objects.all()}
    witness_lines = keys_witness_lines()

    since = (base + timedelta(minutes=30)).astimezone(BEIJING).strftime("%Y-%m-%dT%H:%M")  # no offset
    code, out, err = run("keys", "compromised", old_id, "--since", since)
    assert code == 0, err
    reg = registry()
    record = reg.get(old_id)
    assert record.status == "compromised"
    new_id = reg.active()[0].key_id
    assert new_id != old_id
    assert record.compromised_since == (base + timedelta(minutes=30)).astimezone(ZoneInfo("UTC")).strftime(
        "%Y-%m-%dT%H:%M:00Z"
    )
    assert "Re-signed 2 heads in 1 logs" in out

    heads = {h.size: h for h in TreeHead.objects.all()}
    assert heads[1].key_id == old_id and heads[1].previous_signatures == []
    for size in (2, 3):
        head = heads[size]
        assert head.key_id == new_id
        assert (bytes(head.root), head.at) == before[size][1:]
        assert head.previous_signatures == [{"key_id": old_id, "signature": before[size][0]}]
    # The re-signed heads were witnessed outside the database.
    added = keys_witness_lines()[len(witness_lines) :]
    assert [(w["head"]["size"], w["head"]["key_id"]) for w in added] == [(2, new_id), (3, new_id)]
    for item in added:
        assert verify_head(item["head"], item["signature"], reg.get(new_id).public_raw)

    # Old receipts: before `since` still trusted; after it the compromised key vouches for nothing.
    assert verify_receipt(receipts[0], reg).ok
    for receipt in receipts[1:]:
        verdict = verify_receipt(receipt, reg)
        assert not verdict.ok and verdict.code == "key_compromised"
    # Fresh receipts verify, signed with the new key.
    reader = client_for("clerk", "read")
    for number in numbers:
        fresh = reader.get(f"/api/v1/invoices/{number}/receipt").json()
        assert fresh["head"]["key_id"] == new_id
        assert verify_receipt(fresh, reg).ok
    served = {k["key_id"]: k["status"] for k in client.get("/api/v1/ledger/public-keys").json()["keys"]}
    assert served == {old_id: "compromised", new_id: "active"}
    # New writes use the new key; running the procedure again changes nothing.
    assert issue(clerk, valid_invoice)["receipt"]["head"]["key_id"] == new_id
    code, out, _err = run("keys", "compromised", old_id, "--since", since)
    assert code == 0
    assert TreeHead.objects.filter(key_id=old_id).count() == 1
    assert registry().active()[0].key_id == new_id


def keys_witness_lines() -> list[dict[str, Any]]:
    from django.conf import settings

    path = Path(settings.FAPIAO_WITNESS_FILE)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def test_compromising_a_retired_key_keeps_the_current_key(keydir, client_for, valid_invoice):
    clerk = client_for("clerk")
    old = issue(clerk, valid_invoice)["receipt"]
    run("keys", "rotate")
    current = registry().active()[0].key_id
    since = (timezone.now() - timedelta(hours=1)).isoformat()  # with an offset
    code, _out, err = run("keys", "compromised", old["head"]["key_id"], "--since", since)
    assert code == 0, err
    assert registry().active()[0].key_id == current  # no second rotation
    assert TreeHead.objects.get(size=1).key_id == current
    assert verify_receipt(old, registry()).code == "key_compromised"


def test_dry_run_changes_nothing(keydir, client_for, valid_invoice):
    old = issue(client_for("clerk"), valid_invoice)["receipt"]["head"]["key_id"]
    before = registry().to_json()
    code, out, _err = run("keys", "compromised", old, "--since", "2020-01-01", "--dry-run")
    assert code == 0 and "1 heads would be re-signed" in out and "a new key would be made current" in out
    assert registry().to_json() == before
    assert TreeHead.objects.get().key_id == old


def test_a_head_the_log_does_not_reproduce_is_not_re_signed(keydir, client_for, valid_invoice):
    clerk = client_for("clerk")
    old = issue(clerk, valid_invoice)["receipt"]["head"]["key_id"]
    issue(clerk, valid_invoice)
    TreeHead.objects.filter(size=2).update(root=b"\x00" * 32)  # a forged head
    code, _out, err = run("keys", "compromised", old, "--since", "2020-01-01T00:00:00Z")
    assert code == 1
    assert "NOT re-signed" in err and "size 2" in err and "Traceback" not in err
    assert TreeHead.objects.get(size=2).key_id == old
    assert TreeHead.objects.get(size=1).key_id != old


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["compromised", "0000000000000000", "--since", "2026-01-01"], "Unknown key"),
        (["compromised", "KEY", "--since", "yesterday"], "ISO 8601"),
        (["compromised", "KEY", "--since", "2999-01-01T00:00:00+08:00"], "future"),
    ],
)
def test_bad_compromise_requests_get_a_precise_error(keydir, client_for, valid_invoice, args, words):
    key_id = issue(client_for("clerk"), valid_invoice)["receipt"]["head"]["key_id"]
    args = [key_id if a == "KEY" else a for a in args]
    before = registry().to_json()
    code, _out, err = run("keys", *args)
    assert code != 0
    assert words in err and "Traceback" not in err
    assert registry().to_json() == before


def test_rotation_is_refused_when_the_key_comes_from_configuration(keydir, settings, tmp_path):
    from fapiao.core.signing import SigningKey, write_private_key

    configured = tmp_path / "mounted-secret.pem"
    write_private_key(configured, SigningKey.generate())
    settings.FAPIAO_SIGNING_KEY_FILE = str(configured)
    key = keys.signing_key()
    assert registry().active()[0].key_id == key.key_id
    assert not list(keydir.glob("*.pem"))  # the configured key is not copied
    code, _out, err = run("keys", "rotate")
    assert code != 0 and "FAPIAO_SIGNING_KEY_FILE" in err


def test_export_public_to_stdout_is_the_public_keys_document(keydir, client):
    code, out, _err = run("keys", "export-public", "-")
    assert code == 0
    assert json.loads(out) == client.get("/api/v1/ledger/public-keys").json()


def test_compromised_key_re_signs_the_audit_heads_too(keydir, client_for, valid_invoice):
    """The audit heads a compromised key signed since the time are re-signed as the ledger's are
    (the dry run lists them), so ``audit verify`` no longer reports ``key_compromised``."""
    from fapiao.audit.models import AuditHead
    from fapiao.audit.store import witness_path
    from fapiao.audit.verify import verify_audit

    clerk = client_for("clerk")
    base = timezone.now() - timedelta(hours=4)
    for hours in (0, 2):
        with time_machine.travel(base + timedelta(hours=hours), tick=False):
            issue(clerk, valid_invoice)
            with translation.override("en"):
                call_command("keys", "export-public", "-", stdout=io.StringIO())  # a staff record too
    old_id = registry().active()[0].key_id
    since_stamp = (base + timedelta(hours=1)).astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")
    later = list(AuditHead.objects.filter(key_id=old_id, at__gte=since_stamp).order_by("pk"))
    earlier = AuditHead.objects.filter(key_id=old_id, at__lt=since_stamp).count()
    assert later and earlier  # heads on both sides of the time
    before = {h.pk: (h.signature, bytes(h.root), h.at, h.size) for h in later}

    code, out, err = run("keys", "compromised", old_id, "--since", since_stamp, "--dry-run")
    assert code == 0, err
    assert f"{len(later)} signed audit heads would be re-signed" in out
    for head in later:
        assert f"head of size {head.size} at {head.at}" in out
    assert AuditHead.objects.filter(key_id=old_id).count() == len(later) + earlier  # nothing changed

    witnessed = witness_path().read_text().count("\n")
    code, out, err = run("keys", "compromised", old_id, "--since", since_stamp)
    assert code == 0, err
    new_id = registry().active()[0].key_id
    assert f"Re-signed {len(later)} signed audit heads" in out
    for pk, (signature, root, at, size) in before.items():
        head = AuditHead.objects.get(pk=pk)
        assert (head.key_id, bytes(head.root), head.at, head.size) == (new_id, root, at, size)
        assert head.previous_signatures == [{"key_id": old_id, "signature": signature}]
    assert AuditHead.objects.filter(key_id=old_id).count() == earlier  # before the time: untouched
    added = witness_path().read_text().splitlines()[witnessed:]
    resigned = [json.loads(line) for line in added if json.loads(line)["head"]["key_id"] == new_id]
    assert {(w["head"]["log"], w["head"]["size"], w["head"]["at"]) for w in resigned} >= {
        (AuditHead.objects.get(pk=pk).log.name, size, at) for pk, (_s, _r, at, size) in before.items()
    }
    report = verify_audit(deep=True)
    codes = {f.code for log in report.logs for f in log.findings if f.is_error}
    assert report.ok, codes


def test_an_audit_head_the_log_does_not_reproduce_is_not_re_signed(keydir, client_for, valid_invoice):
    from fapiao.audit.models import AuditHead

    issue(client_for("clerk"), valid_invoice)
    old_id = registry().active()[0].key_id
    forged = AuditHead.objects.filter(key_id=old_id).order_by("-pk").first()
    assert forged is not None
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_audithead SET root = %s WHERE id = %s", [b"\x00" * 32, forged.pk])
    code, _out, err = run("keys", "compromised", old_id, "--since", "2020-01-01T00:00:00Z")
    assert code == 1
    assert "NOT re-signed" in err and f"size {forged.size}" in err and "Traceback" not in err
    assert AuditHead.objects.get(pk=forged.pk).key_id == old_id
