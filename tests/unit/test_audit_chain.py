"""The audit chain without a database: record bytes, and the checker naming what was changed."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import rfc8785

from fapiao.core.audit_chain import AuditChecker, audit_stamp, record_bytes, record_document
from fapiao.core.canonical import utc_stamp
from fapiao.core.ledger_check import HeadRow, WitnessLog
from fapiao.core.merkle import MemoryTree, leaf_hash
from fapiao.core.signing import KeyRegistry, SigningKey, make_head, sign_head

KEY = SigningKey.from_seed(bytes(range(32)))
REGISTRY = KeyRegistry()
REGISTRY.add(KEY.public_raw)
LOG = "audit:staff"


def document(n: int) -> dict[str, object]:
    return record_document(
        log=LOG,
        at=audit_stamp(datetime(2026, 1, 5, 8, 0, n, 123456, tzinfo=UTC)),
        actor={"id": 1, "username": "operator", "name": "吴运维", "role": "operator"},
        action="test.step",
        target={"type": "test", "id": str(n), "repr": ""},
        request_id="r",
        client="127.0.0.1",
        before=None,
        after={"n": n, "text": "北京"},
        note="",
    )


def test_record_bytes_are_rfc_8785_for_these_documents():
    assert record_bytes(document(1), check=True) == rfc8785.dumps(document(1))
    assert json.loads(record_bytes(document(1)))["at"] == "2026-01-05T08:00:01.123456Z"


def head(tree: MemoryTree, size: int) -> HeadRow:
    document = make_head(
        log=LOG, size=size, root=tree.root(size), at=utc_stamp(datetime.now(UTC)), key_id=KEY.key_id
    )
    return HeadRow(size, tree.root(size), document["at"], KEY.key_id, sign_head(document, KEY))


def check(
    leaves: dict[int, bytes], nodes: dict[int, bytes], heads: list[HeadRow], size: int
) -> list[tuple[str, int | None]]:
    checker = AuditChecker(LOG, size=size, sealed_size=size, keys=REGISTRY, deep=True)
    checker.check_range(0, size, leaves, nodes, heads)
    positions: dict[bytes, list[int]] = {}
    for index, node in nodes.items():
        positions.setdefault(node, []).append(index)
    checker.resolve_suspects(positions)
    checker.finish(latest_head_size=heads[-1].size if heads else 0)
    return [(str(f.code), f.index) for f in checker.findings if f.is_error]


def log_of(size: int) -> tuple[dict[int, bytes], list[HeadRow]]:
    leaves = {n: leaf_hash(record_bytes(document(n))) for n in range(size)}
    tree = MemoryTree()
    heads = []
    for n in range(size):
        tree.append_leaf(leaves[n])
        heads.append(head(tree, n + 1))
    return leaves, heads


def test_an_intact_log_has_no_findings():
    leaves, heads = log_of(6)
    assert check(dict(leaves), dict(leaves), heads, 6) == []


def test_deleted_edited_and_moved_records_are_named_by_index():
    leaves, heads = log_of(6)
    nodes = dict(leaves)
    rows = dict(leaves)
    del rows[1]
    rows[2] = leaf_hash(b"edited")
    rows[3], rows[5] = leaves[5], leaves[3]
    assert check(rows, nodes, heads, 6) == [
        ("record_deleted", 1),
        ("record_edited", 2),
        ("record_moved", 3),
        ("record_moved", 5),
    ]


def test_unsigned_records_bad_signatures_and_witness():
    leaves, heads = log_of(4)
    forged = HeadRow(heads[-1].size, heads[-1].root, heads[-1].at, KEY.key_id, heads[0].signature)
    assert check(dict(leaves), dict(leaves), [*heads[:2], forged], 4) == [("bad_signature", None)]
    assert check(dict(leaves), dict(leaves), heads[:2], 4) == [("records_unsigned", 2)]
    witness = WitnessLog(LOG, roots={2: b"\x00" * 32, 9: heads[-1].root})
    checker = AuditChecker(LOG, size=4, sealed_size=4, keys=REGISTRY, witness=witness)
    checker.check_range(0, 4, dict(leaves), dict(leaves), heads)
    checker.finish(latest_head_size=4)
    assert [(str(f.code), f.params.get("size")) for f in checker.findings] == [
        ("witness_mismatch", 2),
        ("witness_truncated", 9),
    ]
