"""The backup file format and manifest (fapiao.core.backup): no database, no Django."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fapiao.core import backup
from fapiao.core.backup import (
    CHUNK,
    BackupDamagedError,
    Kept,
    ManifestRefusedError,
    backups_to_keep,
    compare_summaries,
    decrypt_stream,
    encrypt_stream,
    parse_age,
    sign_manifest,
    verify_manifest,
)
from fapiao.core.signing import KeyRegistry, SigningKey

KEY = bytes(range(32))


def _sealed(data: bytes, *, key: bytes = KEY, backup_id: str = "b1", name: str = "db.sqlite3") -> bytes:
    target = io.BytesIO()
    encrypt_stream(io.BytesIO(data), target, key=key, backup_id=backup_id, name=name)
    return target.getvalue()


def _open(sealed: bytes, *, key: bytes = KEY, backup_id: str = "b1", name: str = "db.sqlite3") -> bytes:
    target = io.BytesIO()
    decrypt_stream(io.BytesIO(sealed), target, key=key, backup_id=backup_id, name=name)
    return target.getvalue()


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17])
def test_round_trip_at_chunk_edges(size):
    data = bytes(i % 251 for i in range(size))
    target = io.BytesIO()
    digest, written = encrypt_stream(io.BytesIO(data), target, key=KEY, backup_id="b1", name="f")
    assert written == size
    assert _open(target.getvalue(), name="f") == data
    assert digest == decrypt_stream(io.BytesIO(target.getvalue()), None, key=KEY, backup_id="b1", name="f")[0]


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=5000))
def test_round_trip_any_bytes(data):
    assert _open(_sealed(data)) == data


def test_ciphertext_hides_the_plaintext_and_differs_each_time():
    data = b"91110108MA01ABCD84 " * 100
    first, second = _sealed(data), _sealed(data)
    assert b"91110108MA01ABCD84" not in first
    assert first != second  # a fresh nonce prefix per file


@pytest.mark.parametrize("offset", [0, 5, 12, 20, 40, -1])
def test_a_flipped_byte_anywhere_names_the_file(offset):
    sealed = bytearray(_sealed(b"x" * (CHUNK + 100)))
    sealed[offset] ^= 0x01
    with pytest.raises(BackupDamagedError) as raised:
        _open(bytes(sealed))
    assert "db.sqlite3" in raised.value.render()


def test_a_truncated_file_is_refused_even_at_a_chunk_boundary():
    sealed = _sealed(b"y" * (2 * CHUNK + 10))
    first_chunk_end = len(backup.MAGIC) + 8 + 4 + CHUNK + 16
    for cut in (len(sealed) - 1, first_chunk_end, first_chunk_end + 4 + CHUNK + 16):
        with pytest.raises(BackupDamagedError):
            _open(sealed[:cut])


def test_trailing_bytes_are_refused():
    with pytest.raises(BackupDamagedError):
        _open(_sealed(b"z" * 10) + b"\x00")


@pytest.mark.parametrize("change", [{"key": bytes(32)}, {"backup_id": "b2"}, {"name": "witness/heads.jsonl"}])
def test_a_file_only_opens_with_its_key_in_its_backup_under_its_name(change):
    sealed = _sealed(b"secret")
    with pytest.raises(BackupDamagedError):
        _open(sealed, **change)


def test_chunks_cannot_be_reordered():
    sealed = _sealed(b"a" * CHUNK + b"b" * CHUNK + b"c")
    header = len(backup.MAGIC) + 8
    size = 4 + CHUNK + 16
    one, two = sealed[header : header + size], sealed[header + size : header + 2 * size]
    swapped = sealed[:header] + two + one + sealed[header + 2 * size :]
    with pytest.raises(BackupDamagedError):
        _open(swapped)


def _registry(key: SigningKey) -> KeyRegistry:
    registry = KeyRegistry()
    registry.add(key.public_raw, created_at="2026-01-01T00:00:00Z")
    return registry


MANIFEST = {"format": "fapiao-backup/1", "id": "20261205T000000Z-abcdef", "summary": {"merchants": {}}}


def test_a_signed_manifest_verifies_with_a_known_key():
    key = SigningKey.generate()
    signed = sign_manifest(MANIFEST, key)
    assert verify_manifest(signed, _registry(key), backup_id=MANIFEST["id"]) == MANIFEST


def test_a_manifest_of_another_installation_is_refused():
    signed = sign_manifest(MANIFEST, SigningKey.generate())
    with pytest.raises(ManifestRefusedError, match="does not know"):
        verify_manifest(signed, _registry(SigningKey.generate()), backup_id=MANIFEST["id"])


def test_a_changed_manifest_is_refused():
    key = SigningKey.generate()
    signed = sign_manifest(MANIFEST, key)
    signed["manifest"] = {**signed["manifest"], "summary": {"merchants": {"X": {"invoices": 1}}}}
    with pytest.raises(ManifestRefusedError, match="signature"):
        verify_manifest(signed, _registry(key), backup_id=MANIFEST["id"])


def test_a_manifest_moved_to_another_backup_is_refused():
    key = SigningKey.generate()
    with pytest.raises(ManifestRefusedError, match="belongs to backup"):
        verify_manifest(sign_manifest(MANIFEST, key), _registry(key), backup_id="20261206T000000Z-000000")


def test_compare_summaries_names_each_difference():
    expected = {"merchants": {"A": {"invoices": 3, "months": {"2026-12": {"0.06": {"amount": "300"}}}}}}
    found = {"merchants": {"A": {"invoices": 2, "months": {"2026-12": {"0.06": {"amount": "200"}}}}, "B": {}}}
    differences = [str(d) for d in compare_summaries(expected, found)]
    assert "merchants A invoices: expected 3, found 2" in differences
    assert "merchants A months 2026-12 0.06 amount: expected '300', found '200'" in differences
    assert any(d.startswith("merchants B:") for d in differences)
    assert compare_summaries(expected, expected) == []


def _kept(
    days_ago: float, verified: bool = False, now: datetime = datetime(2026, 12, 5, 12, tzinfo=UTC)
) -> Kept:
    created = now - timedelta(days=days_ago)
    return Kept(created.strftime("%Y%m%dT%H%M%SZ"), created, verified)


def test_retention_keeps_the_newest_per_day_week_and_month():
    backups = [_kept(d / 2) for d in range(0, 200)]  # two a day for 100 days
    keep = backups_to_keep(backups, daily=7, weekly=4, monthly=3)
    days = {b.created.date() for b in backups if b.backup_id in keep}
    assert len(keep) <= 7 + 4 + 3
    assert backups[0].backup_id in keep  # the newest
    assert len(days) == len(keep)  # never two of one day


def test_retention_always_keeps_the_newest_verified_backup():
    backups = [_kept(0), _kept(1), _kept(40, verified=True)]
    assert backups[2].backup_id in backups_to_keep(backups, daily=1, weekly=0, monthly=0)


@pytest.mark.parametrize(("text", "seconds"), [("24h", 86400), ("90m", 5400), ("2d", 172800), ("30s", 30)])
def test_parse_age(text, seconds):
    assert parse_age(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "h", "24", "1.5h", "-3h", "²h", "3w"])
def test_parse_age_refuses(text):
    with pytest.raises(ValueError):
        parse_age(text)


def test_target_time_needs_a_zone_and_is_read_as_utc() -> None:
    from datetime import UTC, datetime

    from fapiao.ops.backup.pgbackrest import TargetTimeError, parse_target_time

    assert parse_target_time("2026-12-05T14:30:00+08:00") == datetime(2026, 12, 5, 6, 30, tzinfo=UTC)
    assert parse_target_time("2026-12-05T06:30:00.25Z") == datetime(2026, 12, 5, 6, 30, 0, 250000, tzinfo=UTC)
    for bad in ("2026-12-05 14:30", "yesterday", ""):
        with pytest.raises(TargetTimeError):
            parse_target_time(bad)
