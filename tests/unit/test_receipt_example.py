"""Reproduce docs/spec/receipt-example.json byte for byte (docs/spec/ledger.md: every
implementation must).  The entries are rebuilt from Python dicts written out here,
not copied from the example's strings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fapiao.core.canonical import canonical_bytes, entry_bytes
from fapiao.core.merkle import MemoryTree, leaf_hash, tree_root, verify_inclusion
from fapiao.core.receipt import build_receipt, verify_receipt
from fapiao.core.signing import (
    KeyRegistry,
    SigningKey,
    b64decode_strict,
    b64encode,
    head_bytes,
    key_id,
    make_head,
    sign_head,
    verify_head,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "spec" / "receipt-example.json"


@pytest.fixture(scope="module")
def example_raw() -> bytes:
    return EXAMPLE.read_bytes()


@pytest.fixture(scope="module")
def example(example_raw: bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(example_raw)
    return data


SELLER = {"name": "北京示例科技有限公司", "tax_id": "91110108MA01ABCD84"}
BUYER = {"name": "北京买方贸易有限公司", "tax_id": "91110000MA01XKQ2TQ", "sealed": None}


def _line(amount: str, tax: str) -> dict[str, Any]:
    return {
        "no": 1,
        "name": "*信息技术服务*软件开发",
        "tax_code": "3040201000000000000",
        "spec": "",
        "unit": "项",
        "quantity": "1",
        "unit_price": amount,
        "amount": amount,
        "tax_rate": "0.06",
        "tax": tax,
    }


def _invoice(number: str, amount: str, tax: str, total: str) -> dict[str, Any]:
    return {
        "number": number,
        "kind": "ordinary",
        "colour": "blue",
        "direction": "out",
        "issued_on": "2026-11-27",
        "seller": SELLER,
        "buyer": BUYER,
        "lines": [_line(amount, tax)],
        "total_amount": amount,
        "total_tax": tax,
        "total_with_tax": total,
        "original_number": None,
        "remark": "",
    }


ENTRIES = [
    {
        "log": "91110108MA01ABCD84",
        "seq": 0,
        "kind": "issue",
        "at": "2026-11-27T01:00:00Z",
        "invoice": _invoice("26110100000000000001", "1000.00", "60.00", "1060.00"),
        "ref": None,
    },
    {
        "log": "91110108MA01ABCD84",
        "seq": 1,
        "kind": "issue",
        "at": "2026-11-27T01:00:05Z",
        "invoice": _invoice("26110100000000000002", "250.00", "15.00", "265.00"),
        "ref": None,
    },
    {
        "log": "91110108MA01ABCD84",
        "seq": 2,
        "kind": "issue",
        "at": "2026-11-27T01:00:09Z",
        "invoice": _invoice("26110100000000000003", "88.80", "5.33", "94.13"),
        "ref": None,
    },
]


@pytest.fixture(scope="module")
def key(example: dict[str, Any]) -> SigningKey:
    return SigningKey.from_seed(bytes.fromhex(example["test_private_key_seed_hex"]))


@pytest.fixture(scope="module")
def entries() -> list[bytes]:
    return [entry_bytes(**e) for e in ENTRIES]


def test_entry_bytes(example: dict[str, Any], entries: list[bytes]) -> None:
    assert [e.decode("utf-8") for e in entries] == example["entries_rfc8785"]
    assert entries == [e.encode("utf-8") for e in example["entries_rfc8785"]]


def test_leaf_hashes_and_root(example: dict[str, Any], entries: list[bytes]) -> None:
    leaves = [leaf_hash(e) for e in entries]
    assert [h.hex() for h in leaves] == example["leaf_hashes_hex"]
    assert tree_root(leaves).hex() == example["root_hex"]
    assert MemoryTree(entries).root().hex() == example["root_hex"]


def test_key(example: dict[str, Any], key: SigningKey) -> None:
    assert b64encode(key.public_raw) == example["public_key"]
    assert key.key_id == example["key_id"] == key_id(key.public_raw)


def test_head_signature_and_receipt(
    example: dict[str, Any], example_raw: bytes, entries: list[bytes], key: SigningKey
) -> None:
    tree = MemoryTree(entries)
    head = make_head(
        log=ENTRIES[0]["log"], size=3, root=tree.root(), at="2026-11-27T01:00:10Z", key_id=key.key_id
    )
    assert head_bytes(head).decode("utf-8") == example["head_rfc8785"]
    signature = sign_head(head, key)  # Ed25519 is deterministic
    assert signature == example["receipt"]["signature"]
    assert verify_head(head, signature, key.public_raw)

    receipt = build_receipt(
        log=head["log"],
        index=1,
        entry=entries[1],
        head=head,
        signature=signature,
        proof=tree.inclusion_proof(1),
    )
    assert receipt == example["receipt"]
    assert list(receipt) == list(example["receipt"])
    assert list(receipt["head"]) == list(example["receipt"]["head"])
    # The example file is json.dumps(indent=2, ensure_ascii=False); our receipt renders to the same text.
    rendered = json.dumps(receipt, indent=2, ensure_ascii=False)
    assert rendered.encode("utf-8") in example_raw.replace(b"\n  ", b"\n")
    whole = json.dumps(example, indent=2, ensure_ascii=False).encode("utf-8")
    assert whole == example_raw.rstrip(b"\n")


def test_proof_is_rfc9162_path(example: dict[str, Any], entries: list[bytes]) -> None:
    proof = [b64decode_strict(p) for p in example["receipt"]["proof"]]
    leaves = [leaf_hash(e) for e in entries]
    assert proof == [leaves[0], leaves[2]]
    assert verify_inclusion(leaves[1], 1, 3, proof, bytes.fromhex(example["root_hex"]))


def test_verify_receipt_accepts_the_example(example: dict[str, Any]) -> None:
    registry = KeyRegistry()
    registry.add(b64decode_strict(example["public_key"]), created_at="2026-11-01T00:00:00Z")
    for form in (example["receipt"], json.dumps(example["receipt"]), json.dumps(example["receipt"]).encode()):
        verdict = verify_receipt(form, registry)
        assert verdict.ok, verdict
        assert verdict.code == "ok"
        assert verdict.message_zh.startswith("该发票是日志第 1 条，已被大小为 3 的签名树头包含。")
        assert "26110100000000000002" in verdict.message_zh
        assert "2026-11-27T01:00:10Z" in verdict.message_zh
        assert verdict.message_en.startswith("This invoice is entry 1 (counting from 0) of the log")
        assert verdict.entry is not None and canonical_bytes(verdict.entry) == entry_bytes(**ENTRIES[1])
        assert (verdict.index, verdict.size, verdict.log) == (1, 3, "91110108MA01ABCD84")
