"""Field encryption: format, associated data, fresh nonces, key versions, the blind index."""

from __future__ import annotations

import os

import pytest

from fapiao.core.fieldcrypt import (
    FORMAT_VERSION,
    DecryptionError,
    FieldContext,
    Keyring,
    associated_data,
    key_version_of,
)

KEY1, KEY2, INDEX = os.urandom(32), os.urandom(32), os.urandom(32)
HERE = FieldContext(
    merchant_id=7, table="invoices_invoice", field="buyer_phone", row="5f0c8a4e-0000-4000-8000-000000000001"
)


def ring(current: int = 1, **keys: bytes) -> Keyring:
    versions = {int(name[1:]): key for name, key in keys.items()} if keys else {1: KEY1}
    return Keyring(versions, current=current, index_key=INDEX)


def test_round_trip_and_format():
    blob = ring().encrypt("13812345678", HERE)
    assert blob[0] == FORMAT_VERSION and key_version_of(blob) == 1
    assert len(blob) == 1 + 4 + 12 + len("13812345678") + 16
    assert ring().decrypt_text(blob, HERE) == "13812345678"
    assert b"13812345678" not in blob


def test_every_encryption_has_a_fresh_nonce():
    blobs = {ring().encrypt("same", HERE) for _ in range(50)}
    assert len(blobs) == 50
    assert len({blob[5:17] for blob in blobs}) == 50


@pytest.mark.parametrize(
    "elsewhere",
    [
        FieldContext(8, HERE.table, HERE.field, HERE.row),
        FieldContext(HERE.merchant_id, "catalogue_buyer", HERE.field, HERE.row),
        FieldContext(HERE.merchant_id, HERE.table, "buyer_address", HERE.row),
        FieldContext(HERE.merchant_id, HERE.table, HERE.field, "5f0c8a4e-0000-4000-8000-000000000002"),
    ],
)
def test_associated_data_binds_merchant_table_field_and_row(elsewhere: FieldContext):
    blob = ring().encrypt("13812345678", HERE)
    with pytest.raises(DecryptionError):
        ring().decrypt(blob, elsewhere)


def test_associated_data_binds_the_key_version():
    both = ring(2, v1=KEY1, v2=KEY2)
    blob = bytearray(both.encrypt("x", HERE))
    blob[1:5] = (1).to_bytes(4, "big")  # relabel as version 1
    with pytest.raises(DecryptionError):
        both.decrypt(bytes(blob), HERE)
    assert (
        associated_data(HERE, 3)
        == b"fapiao-field/1|7|invoices_invoice|buyer_phone|" + HERE.row.encode() + b"|3"
    )


def test_old_versions_decrypt_and_missing_ones_say_so():
    old = ring().encrypt("old", HERE)
    rotated = ring(2, v1=KEY1, v2=KEY2)
    assert rotated.decrypt_text(old, HERE) == "old"
    assert key_version_of(rotated.encrypt("new", HERE)) == 2
    with pytest.raises(DecryptionError, match="version 2"):
        ring().decrypt(rotated.encrypt("new", HERE), HERE)


def test_tampered_or_short_ciphertexts_are_refused():
    blob = bytearray(ring().encrypt("13812345678", HERE))
    blob[-1] ^= 1
    with pytest.raises(DecryptionError):
        ring().decrypt(bytes(blob), HERE)
    with pytest.raises(DecryptionError):
        ring().decrypt(b"\x01\x00\x00\x00\x01", HERE)
    with pytest.raises(DecryptionError):
        key_version_of(b"\x02" + bytes(40))


def test_blind_index_is_keyed_deterministic_and_separated_by_purpose():
    one = ring().blind_index("11010519491231037X", purpose="buyer_tax_id")
    assert one == ring().blind_index("11010519491231037X", purpose="buyer_tax_id")
    assert len(one) == 32 and int(one, 16) >= 0
    assert one != ring().blind_index("11010519491231037X", purpose="other")
    other_key = Keyring({1: KEY1}, current=1, index_key=os.urandom(32))
    assert one != other_key.blind_index("11010519491231037X", purpose="buyer_tax_id")


def test_bad_keyrings_and_contexts_are_refused():
    with pytest.raises(ValueError):
        Keyring({1: KEY1}, current=2, index_key=INDEX)
    with pytest.raises(ValueError):
        Keyring({1: b"short"}, current=1, index_key=INDEX)
    with pytest.raises(ValueError):
        FieldContext(1, "a|b", "f", "r")
