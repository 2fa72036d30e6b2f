"""Ed25519 heads, key files and the public-key registry (docs/spec/ledger.md key custody)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from fapiao.core.canonical import canonical_bytes, entry_bytes, new_salt, seal, utc_stamp
from fapiao.core.errors import FapiaoError, InvalidValueError
from fapiao.core.signing import (
    KeyRegistry,
    SigningKey,
    b64decode_strict,
    b64encode,
    head_bytes,
    key_id,
    load_public_keys,
    make_head,
    read_private_key,
    sign_head,
    verify_head,
    write_private_key,
)

TEST_SEED = bytes.fromhex("eb6c974e5451e9999f94c007add4be937b4411f935ac5aa94931218b0adbfa5c")
FIXTURES = Path(__file__).parent / "fixtures" / "receipts"
ROOT = bytes(range(32))


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.from_seed(TEST_SEED)


def head_for(key: SigningKey, at: str = "2026-11-27T01:00:10Z") -> dict[str, object]:
    return make_head(log="91110108MA01ABCD84", size=3, root=ROOT, at=at, key_id=key.key_id)


def test_key_id(key: SigningKey) -> None:
    assert key.key_id == "5bb0319ddf0d7e20"
    assert key_id(key.public_raw) == hashlib.sha256(key.public_raw).digest()[:8].hex()
    assert b64encode(key.public_raw) == "6Mbj1zn8QPbWGvz8sJkEOk3UmzxrFVwZ4BtW50z8Cuo="
    with pytest.raises(InvalidValueError):
        key_id(b"short")
    assert SigningKey.generate().key_id != key.key_id


def test_head_bytes_are_canonical_and_complete(key: SigningKey) -> None:
    head = head_for(key)
    assert list(head) == ["log", "size", "root", "at", "key_id"]
    assert head_bytes(head) == canonical_bytes(head)
    assert head_bytes({**head, "extra": 1}) == head_bytes(head)  # only the five members are signed
    with pytest.raises(InvalidValueError):
        head_bytes({"log": "x"})
    aware = datetime(2026, 11, 27, 9, 0, 10, 999, tzinfo=timezone(timedelta(hours=8)))
    assert make_head(log="L", size=0, root=ROOT, at=aware, key_id="k")["at"] == "2026-11-27T01:00:10Z"


def test_sign_and_verify_head(key: SigningKey) -> None:
    head = head_for(key)
    signature = sign_head(head, key)
    assert len(b64decode_strict(signature)) == 64
    assert verify_head(head, signature, key.public_raw)
    for member, value in [("size", 4), ("log", "91110000MA01XKQ2TQ"), ("at", "2026-11-27T01:00:11Z"),
                          ("root", b64encode(bytes(32))), ("key_id", "0000000000000000")]:  # fmt: skip
        assert not verify_head({**head, member: value}, signature, key.public_raw), member
    other = SigningKey.generate()
    assert not verify_head(head, signature, other.public_raw)
    assert not verify_head(head, sign_head(head, other), key.public_raw)
    # Garbage never raises.
    assert not verify_head(head, "not base64!", key.public_raw)
    assert not verify_head(head, signature.rstrip("="), key.public_raw)
    assert not verify_head(head, signature, b"\x00" * 5)
    assert not verify_head({"log": "x"}, signature, key.public_raw)


def test_key_file_is_created_0600_and_round_trips(tmp_path: Path, key: SigningKey) -> None:
    path = tmp_path / "signing.pem"
    write_private_key(path, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = read_private_key(path)
    assert loaded.public_raw == key.public_raw
    with pytest.raises(FileExistsError):  # never overwrites a key
        write_private_key(path, SigningKey.generate())
    assert read_private_key(path).key_id == key.key_id


def test_key_file_readable_by_others_is_refused(tmp_path: Path, key: SigningKey) -> None:
    path = tmp_path / "signing.pem"
    write_private_key(path, key)
    os.chmod(path, 0o644)
    with pytest.raises(FapiaoError) as info:
        read_private_key(path)
    assert "chmod 600" in str(info.value)
    os.chmod(path, 0o640)
    with pytest.raises(FapiaoError):
        read_private_key(path)
    os.chmod(path, 0o400)
    assert read_private_key(path).key_id == key.key_id


def test_key_file_errors(tmp_path: Path) -> None:
    with pytest.raises(FapiaoError):
        read_private_key(tmp_path / "missing.pem")
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"not a key")
    junk.chmod(0o600)
    with pytest.raises(FapiaoError):
        read_private_key(junk)


def test_registry_round_trip(tmp_path: Path, key: SigningKey) -> None:
    registry = KeyRegistry()
    first = registry.add(key.public_raw, created_at="2026-11-01T00:00:00Z")
    second_key = SigningKey.generate()
    registry.add(second_key.public_raw, created_at=datetime(2026, 12, 1, tzinfo=UTC))
    registry.retire(key.key_id)
    path = tmp_path / "keys.json"
    registry.save(path)
    doc = json.loads(path.read_text("utf-8"))
    assert doc["keys"][0] == {
        "key_id": key.key_id,
        "public_key": b64encode(key.public_raw),
        "created_at": "2026-11-01T00:00:00Z",
        "status": "retired",
        "compromised_since": None,
    }
    assert [k["status"] for k in doc["keys"]] == ["retired", "active"]
    loaded = KeyRegistry.load(path)
    assert loaded.to_json() == registry.to_json()
    assert [r.key_id for r in loaded.active()] == [second_key.key_id]
    assert loaded.get(key.key_id) is not None and loaded.get("nope") is None
    assert first.public_raw == key.public_raw
    assert [p.name for p in tmp_path.iterdir()] == ["keys.json"]  # no temporary file left behind


def test_registry_refuses_a_lying_document() -> None:
    good = KeyRegistry()
    good.add(SigningKey.from_seed(TEST_SEED).public_raw, created_at="2026-11-01T00:00:00Z")
    doc = good.to_json()
    for change in [
        {"key_id": "0000000000000000"},  # id does not match the key
        {"public_key": "AAAA"},
        {"status": "lost"},
        {"status": "compromised"},  # without compromised_since
        {"compromised_since": "yesterday"},
    ]:
        bad = {"keys": [{**doc["keys"][0], **change}]}
        with pytest.raises(InvalidValueError):
            KeyRegistry.from_json(bad)
    with pytest.raises(InvalidValueError):
        KeyRegistry.from_json({"nokeys": []})


def test_compromise_semantics(key: SigningKey) -> None:
    registry = KeyRegistry()
    registry.add(key.public_raw, created_at="2026-11-01T00:00:00Z")
    assert registry.trust(key.key_id, "2026-11-27T01:00:10Z") == "ok"
    assert registry.trust("ffffffffffffffff", "2026-11-27T01:00:10Z") == "unknown_key"
    since = datetime(2026, 11, 27, 9, 0, 10, tzinfo=timezone(timedelta(hours=8)))  # = 01:00:10Z
    registry.mark_compromised(key.key_id, since)
    record = registry.get(key.key_id)
    assert record is not None and record.compromised_since == "2026-11-27T01:00:10Z"
    assert registry.trust(key.key_id, "2026-11-27T01:00:09Z") == "ok"  # heads before stay trusted
    assert registry.trust(key.key_id, "2026-11-27T01:00:10Z") == "key_compromised"  # at the moment: not
    assert registry.trust(key.key_id, "2027-01-01T00:00:00Z") == "key_compromised"
    assert registry.active() == []
    with pytest.raises(InvalidValueError):
        registry.mark_compromised("ffffffffffffffff", since)


def test_load_public_keys_accepts_three_forms(key: SigningKey, tmp_path: Path) -> None:
    for name in ("keys.json", "test-key.pem", "test-key.b64"):
        registry = load_public_keys(FIXTURES / name)
        record = registry.get(key.key_id)
        assert record is not None and record.public_raw == key.public_raw, name
    for content in ("garbage", "{}", "-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----", "AAAA"):
        path = tmp_path / "bad"
        path.write_text(content)
        with pytest.raises(FapiaoError):
            load_public_keys(path)
    with pytest.raises(FapiaoError):
        load_public_keys(tmp_path / "missing")


# canonical.py helpers used by heads and entries


def test_canonical_refuses_floats() -> None:
    with pytest.raises(InvalidValueError) as info:
        canonical_bytes({"a": [1, {"b": 1.5}]})
    assert info.value.code == "float_in_entry"
    with pytest.raises(InvalidValueError):
        canonical_bytes({"n": 2**60})
    assert canonical_bytes({"b": "1.50", "a": None}) == b'{"a":null,"b":"1.50"}'


def test_utc_stamp() -> None:
    assert utc_stamp(datetime(2026, 1, 1, 8, 0, 0, 999999, tzinfo=timezone(timedelta(hours=8)))) == (
        "2026-01-01T00:00:00Z"
    )
    with pytest.raises(InvalidValueError):
        utc_stamp(datetime(2026, 1, 1))  # naive on purpose


def test_entry_bytes_validates() -> None:
    ok = {"log": "L", "seq": 0, "kind": "issue", "at": "2026-11-27T01:00:00Z", "invoice": {}, "ref": None}
    assert entry_bytes(**ok).startswith(b'{"at":"2026-11-27T01:00:00Z"')  # type: ignore[arg-type]
    for change in [
        {"seq": -1},
        {"seq": True},
        {"kind": "delete"},
        {"at": "2026-11-27 01:00:00"},
        {"log": ""},
    ]:
        with pytest.raises(InvalidValueError):
            entry_bytes(**{**ok, **change})  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError) as info:
        entry_bytes(**{**ok, "invoice": {"total": 1.5}})  # type: ignore[arg-type]
    assert info.value.code == "float_in_entry"


def test_seal() -> None:
    salt = bytes(16)
    expected = hashlib.sha256(b'{"id":null,"phone":"13800000000","salt":"' + b"0" * 32 + b'"}').hexdigest()
    assert seal({"phone": "13800000000", "id": None}, salt) == expected
    assert seal({"phone": "13800000000"}, new_salt()) != seal({"phone": "13800000000"}, new_salt())
    with pytest.raises(InvalidValueError):
        seal({"salt": "x"}, salt)
    with pytest.raises(InvalidValueError):
        seal({"phone": "1"}, b"short")
