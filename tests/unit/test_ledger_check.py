"""The streaming ledger checker behind `fapiao ledger verify`, with no database.

A synthetic log (real entry bytes, Merkle nodes from ``MemoryTree``, heads signed with the
public test key of ``shared/receipt-example.json``) is fed to :class:`LogChecker` in chunks
the way the Django side feeds it; each test breaks one thing and checks the exact finding.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from fapiao.core import merkle
from fapiao.core.canonical import entry_bytes
from fapiao.core.choices import InvoiceState
from fapiao.core.invoice import Line
from fapiao.core.ledger_check import (
    MESSAGES,
    CompactRange,
    EntryRow,
    Finding,
    FindingCode,
    HeadRow,
    LogChecker,
    Severity,
    StateFold,
    WitnessLog,
    document_diff,
    flag_runs,
    invoice_findings,
    parse_witness,
)
from fapiao.core.ledger_chunk import EntryTails, digest_chunk, subtree_spans
from fapiao.core.signing import KeyRegistry, SigningKey, make_head, sign_head
from fapiao.core.tax import resolve_rate

LOG = "91110108MA01ABCD84"
KEY = SigningKey.from_seed(bytes.fromhex("eb6c974e5451e9999f94c007add4be937b4411f935ac5aa94931218b0adbfa5c"))
C = FindingCode


def registry(*keys: SigningKey) -> KeyRegistry:
    reg = KeyRegistry()
    for key in keys or (KEY,):
        reg.add(key.public_raw, created_at="2026-01-01T00:00:00Z")
    return reg


def invoice(n: int, *, kind: str = "issue", original: str | None = None) -> dict[str, object]:
    number = f"26110100{n:012d}"
    sign = "-" if kind == "red_letter" else ""
    line = {
        "amount": f"{sign}100.00",
        "no": 1,
        "quantity": f"{sign}1",
        "tax": f"{sign}6.00",
        "original_no": 1,
    }
    if kind != "red_letter":
        del line["original_no"]
    return {
        "number": number,
        "original_number": original,
        "lines": [line],
        "total_amount": f"{sign}100.00",
    }


@dataclass
class FakeLog:
    """A log as the database holds it: entry rows, leaf nodes, heads; easy to break."""

    size: int
    head_every: int = 3
    entries: dict[int, EntryRow] = field(default_factory=dict)
    nodes: dict[int, bytes] = field(default_factory=dict)
    heads: dict[int, HeadRow] = field(default_factory=dict)
    log_size: int = 0
    fast_chunks: int = 0

    def __post_init__(self) -> None:
        tree = merkle.MemoryTree()
        for seq in range(self.size):
            kind = "red_letter" if seq % 5 == 4 else "issue"
            original = f"26110100{seq - 1:012d}" if kind == "red_letter" else None
            document = invoice(seq, kind=kind, original=original)
            body = entry_bytes(
                log=LOG, seq=seq, kind=kind, at="2026-11-27T01:00:00Z", invoice=document, ref=None
            )
            tree.append(body)
            self.entries[seq] = (seq, body, merkle.leaf_hash(body), kind, "")
            self.nodes[seq] = merkle.leaf_hash(body)
            if (seq + 1) % self.head_every == 0 or seq + 1 == self.size:
                self.heads[seq + 1] = self.head(seq + 1, tree.root(seq + 1))
        self.log_size = self.size
        self.tree = tree

    @staticmethod
    def head(size: int, root: bytes, key: SigningKey = KEY, at: str = "2026-11-27T01:00:10Z") -> HeadRow:
        document = make_head(log=LOG, size=size, root=root, at=at, key_id=key.key_id)
        return HeadRow(size, root, at, key.key_id, sign_head(document, key))

    def witness(self, sizes: list[int] | None = None) -> WitnessLog:
        sizes = sorted(self.heads) if sizes is None else sizes
        return WitnessLog(LOG, {size: self.tree.root(size) for size in sizes})

    def check(
        self,
        *,
        chunk: int = 4,
        witness: WitnessLog | None = None,
        keys: KeyRegistry | None = None,
        deep: bool = False,
        fast: bool = True,
        nodes_in_fast: bool = True,
        apart: bool = False,
    ) -> LogChecker:
        """Feed the log chunk by chunk.  ``apart``: hash every chunk first, on its own and last
        chunk first (as helper processes do), then apply the digests in order."""
        end = max(self.log_size, max(self.heads, default=0), max(self.entries, default=-1) + 1)
        checker = LogChecker(
            LOG,
            end=end,
            log_size=self.log_size,
            head_size=max(self.heads, default=0),
            keys=keys or registry(),
            witness=witness if witness is not None else self.witness(),
            deep=deep,
        )
        digests = {}
        if apart:
            for start in reversed(range(0, end, chunk)):
                stop = min(start + chunk, end)
                rows = [self.entries[s] for s in sorted(self.entries) if start <= s < stop]
                heads = [self.heads[s] for s in sorted(self.heads) if start < s <= stop]
                bodies, stored = [row[1] for row in rows], [row[2] for row in rows]
                points = checker.points(start, stop, heads)
                digests[start] = digest_chunk(EntryTails(LOG), start, stop, bodies, stored, points=points)
        for start in range(0, end, chunk):
            stop = min(start + chunk, end)
            rows = [self.entries[s] for s in sorted(self.entries) if start <= s < stop]
            nodes = {i: h for i, h in self.nodes.items() if start <= i < stop}
            heads = [self.heads[s] for s in sorted(self.heads) if start < s <= stop]
            bodies, stored = [row[1] for row in rows], [row[2] for row in rows]
            leaf_nodes = [nodes[i] for i in sorted(nodes)] if nodes_in_fast else None
            digest = digests.get(start)
            if apart:
                if digest is not None and checker.apply_chunk(digest, heads):
                    self.fast_chunks += 1
                    continue
            elif (
                fast
                and len(rows) == stop - start
                and checker.check_chunk(start, bodies, stored, leaf_nodes, heads)
            ):
                self.fast_chunks += 1
                continue
            checker.check_range(start, stop, rows, nodes, heads)
        checker.finish()
        return checker


def codes(checker: LogChecker, severity: Severity | None = Severity.ERROR) -> set[str]:
    return {str(f.code) for f in checker.findings.items if severity is None or f.severity is severity}


def only(checker: LogChecker, code: FindingCode) -> list[Finding]:
    return [f for f in checker.findings.items if f.code is code]


# --- The tree ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 7, 8, 9, 31, 32, 33, 100, 257])
def test_compact_range_root_is_the_rfc9162_root_at_every_size(size):
    leaves = [merkle.leaf_hash(b"entry %d" % i) for i in range(size)]
    compact = CompactRange()
    for i, leaf in enumerate(leaves):
        assert compact.root() == merkle.tree_root(leaves[:i])
        compact.append(leaf)
    assert compact.root() == merkle.tree_root(leaves)
    assert len(compact.stack) == size.bit_count()


def test_compact_range_matches_random_sizes():
    rng = random.Random(7)
    for _ in range(20):
        size = rng.randrange(1, 2000)
        leaves = [rng.randbytes(32) for _ in range(size)]
        compact = CompactRange()
        for leaf in leaves:
            compact.append(leaf)
        assert compact.root() == merkle.tree_root(leaves)


# --- A clean log, and one thing broken at a time ---------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 2, 3, 4, 7, 100])
def test_a_clean_log_has_no_findings_whatever_the_chunking(chunk):
    checker = FakeLog(20).check(chunk=chunk)
    assert checker.findings.items == []
    assert checker.heads == checker.heads_checked == 7
    assert checker.signatures_checked == 1  # only the latest head without --deep
    assert checker.entries == 20
    assert checker.fold_seqs == [4, 9, 14, 19]


def test_deep_checks_every_signature():
    checker = FakeLog(20).check(deep=True)
    assert checker.findings.items == []
    assert checker.signatures_checked == 7


def test_empty_log_is_clean():
    log = FakeLog(0)
    assert log.check().findings.items == []


def test_a_deleted_entry_is_missing_and_its_leaf_hash_keeps_the_heads_checkable():
    log = FakeLog(20)
    del log.entries[7]
    checker = log.check()
    assert codes(checker, None) == {"missing_entry"}
    assert [f.index for f in only(checker, C.MISSING_ENTRY)] == [7]
    assert checker.heads_checked == 7


def test_an_entry_gone_with_its_leaf_hash_leaves_later_heads_unverifiable():
    log = FakeLog(20)
    del log.entries[7], log.nodes[7]
    checker = log.check()
    assert codes(checker) == {"missing_entry"}
    (note,) = only(checker, C.HEAD_UNVERIFIABLE)
    assert note.severity is Severity.INFO and note.size == 9 and note.params["count"] == 5


def test_a_flipped_byte_is_an_altered_entry_and_nothing_else():
    log = FakeLog(20)
    seq, body, leaf, kind, ref = log.entries[5]
    flipped = bytearray(body)
    flipped[len(body) // 2] ^= 0x01
    log.entries[5] = (seq, bytes(flipped), leaf, kind, ref)
    checker = log.check()
    assert codes(checker, None) == {"altered_entry"}
    (finding,) = checker.findings.items
    assert (finding.index, finding.variant) == (5, "leaf_hash")
    assert checker.flags[5] & 8  # SUSPECT: invoice rows are not compared with it


def test_an_entry_rewritten_with_its_leaf_hash_disagrees_with_the_leaf_node_and_the_heads():
    log = FakeLog(20)
    body = log.entries[5][1].replace(b'"100.00"', b'"900.00"', 1)
    log.entries[5] = (5, body, merkle.leaf_hash(body), "issue", "")
    checker = log.check()
    assert [(f.code, f.variant, f.index) for f in only(checker, C.ALTERED_ENTRY)] == [
        (C.ALTERED_ENTRY, "node", 5)
    ]
    assert codes(checker) == {"altered_entry", "head_root_mismatch", "witness_mismatch"}


def test_an_entry_rewritten_with_leaf_hash_and_leaf_node_fails_the_heads():
    log = FakeLog(20)
    body = log.entries[5][1].replace(b'"100.00"', b'"900.00"', 1)
    log.entries[5] = (5, body, merkle.leaf_hash(body), "issue", "")
    log.nodes[5] = merkle.leaf_hash(body)
    checker = log.check()
    assert codes(checker) == {"head_root_mismatch", "witness_mismatch"}
    assert [f.size for f in only(checker, C.HEAD_ROOT_MISMATCH)] == [6, 9, 12, 15, 18, 20]


def test_swapped_entries_are_out_of_order():
    log = FakeLog(20)
    a, b = log.entries[2], log.entries[3]
    log.entries[2], log.entries[3] = (2, *b[1:]), (3, *a[1:])
    checker = log.check()
    assert codes(checker, None) == {"out_of_order"}
    assert {(f.index, f.params["entry_seq"]) for f in checker.findings.items} == {(2, 3), (3, 2)}


def test_an_edited_kind_column_is_found_by_deep_and_the_entry_stays_trusted():
    """The kind and ref columns are lookup copies: the default pass reads kinds from the signed
    bytes (so nothing is folded wrongly); --deep compares the columns too."""
    log = FakeLog(20)
    seq, body, leaf, _kind, ref = log.entries[4]
    log.entries[4] = (seq, body, leaf, "issue", ref)  # really a red letter
    assert log.check().findings.items == [] and 4 in log.check().fold_seqs
    for checker in (log.check(deep=True), log.check(fast=False)):
        assert [(f.code, f.variant) for f in checker.findings.items] == [(C.ALTERED_ENTRY, "columns")]
        assert 4 in checker.fold_seqs


def test_a_corrupted_leaf_node_alone_is_left_to_deep_when_the_fast_path_skips_nodes():
    """The default pass recomputes roots from the entries; the stored nodes proofs are served
    from are compared by --deep (and whenever a chunk goes entry by entry)."""
    log = FakeLog(20)
    log.nodes[5] = bytes(32)
    assert log.check(nodes_in_fast=False).findings.items == []
    for checker in (log.check(deep=True), log.check(fast=False)):
        assert [(f.code, f.variant, f.index) for f in checker.findings.items] == [
            (C.ALTERED_ENTRY, "node", 5)
        ]


def test_a_truncated_log_is_reported_once():
    log = FakeLog(20)
    for seq in (17, 18, 19):
        del log.entries[seq], log.nodes[seq]
    checker = log.check()
    assert codes(checker) == {"truncated"}
    (finding,) = only(checker, C.TRUNCATED)
    assert finding.size == 20 and finding.params["have"] == 17


def test_a_consistently_truncated_log_is_caught_by_the_witness():
    log = FakeLog(20)
    witness = log.witness()
    for seq in (18, 19):
        del log.entries[seq], log.nodes[seq]
    del log.heads[20]
    log.log_size = 18
    checker = log.check(witness=witness)
    assert codes(checker) == {"witness_mismatch"}
    (finding,) = only(checker, C.WITNESS_MISMATCH)
    assert (finding.size, finding.variant, finding.params["db_size"]) == (20, "smaller", 18)


def test_entries_beyond_the_latest_head_are_unsigned():
    log = FakeLog(20)
    del log.heads[20]
    checker = log.check(witness=log.witness())
    assert codes(checker) == {"unsigned_entry"}
    (finding,) = only(checker, C.UNSIGNED_ENTRY)
    assert (finding.index, finding.params["last"], finding.params["count"]) == (18, 19, 2)


def test_a_log_size_below_the_entries_is_reported():
    log = FakeLog(20)
    log.log_size = 15
    assert codes(log.check()) == {"log_size_mismatch"}


def test_a_replaced_head_fails_its_root_and_key_and_the_witness():
    log = FakeLog(20)
    stranger = SigningKey.generate()
    log.heads[20] = FakeLog.head(20, bytes(32), key=stranger)
    checker = log.check()
    assert codes(checker) == {"head_root_mismatch", "unknown_key", "witness_mismatch"}
    assert only(checker, C.WITNESS_MISMATCH)[0].variant == "head"


def test_a_bad_signature_on_the_latest_head_is_found_without_deep_and_older_ones_with_it():
    log = FakeLog(20)
    for size in (9, 20):
        head = log.heads[size]
        log.heads[size] = HeadRow(size, head.root, "2026-11-27T01:00:11Z", head.key_id, head.signature)
    assert [f.size for f in only(log.check(), C.BAD_SIGNATURE)] == [20]
    assert [f.size for f in only(log.check(deep=True), C.BAD_SIGNATURE)] == [9, 20]


def test_heads_signed_by_a_compromised_key_after_its_time():
    log = FakeLog(20)
    keys = registry()
    keys.mark_compromised(KEY.key_id, "2026-11-27T00:00:00Z")
    checker = log.check(keys=keys)
    assert codes(checker) == {"key_compromised"}
    assert len(only(checker, C.KEY_COMPROMISED)) == 7
    keys = registry()
    keys.mark_compromised(KEY.key_id, "2026-12-01T00:00:00Z")  # compromised later: still trusted
    assert log.check(keys=keys).findings.items == []


def test_a_witness_behind_the_database_is_only_a_note():
    log = FakeLog(20)
    checker = log.check(witness=log.witness([3, 6, 9]))
    assert codes(checker) == set()
    (note,) = only(checker, C.WITNESS_LAG)
    assert note.severity is Severity.INFO and note.params["witness_size"] == 9 and note.size == 20
    (none,) = only(log.check(witness=WitnessLog(LOG)), C.WITNESS_LAG)
    assert none.variant == "none"


def test_a_witness_seeing_a_different_root_means_the_log_was_rewritten():
    log = FakeLog(20)
    witness = log.witness()
    witness.roots[12] = bytes(32)
    checker = log.check(witness=witness)
    assert [(f.code, f.size, f.variant) for f in checker.findings.items] == [(C.WITNESS_MISMATCH, 12, "root")]


def test_a_witnessed_head_the_database_lost_is_a_mismatch():
    log = FakeLog(20)
    witness = log.witness()
    del log.heads[12]
    checker = log.check(witness=witness)
    assert [(f.code, f.size, f.variant) for f in checker.findings.items] == [
        (C.WITNESS_MISMATCH, 12, "no_head")
    ]


def test_witness_file_lines():
    log = FakeLog(6)
    lines = []
    for size in (3, 6):
        head = log.heads[size]
        lines.append(json.dumps({"head": head.document(LOG), "signature": head.signature}).encode() + b"\n")
    forged = FakeLog.head(6, bytes(32))
    fork = json.dumps({"head": forged.document(LOG), "signature": forged.signature}).encode() + b"\n"
    logs, findings = parse_witness([*lines, b"not json\n", fork, b'{"head": {"lo'], keys=registry())
    assert logs[LOG].roots == {3: log.tree.root(3), 6: log.tree.root(6)}
    assert logs[LOG].forks == {6}
    assert [(f.code, f.variant, f.params.get("line")) for f in findings] == [
        (C.WITNESS_MISMATCH, "malformed", 3),
        (C.WITNESS_LAG, "partial_line", 5),
    ]
    stranger = SigningKey.generate()
    alien = FakeLog.head(3, log.tree.root(3), key=stranger)
    _logs, findings = parse_witness(
        [json.dumps({"head": alien.document(LOG), "signature": alien.signature}).encode() + b"\n"],
        keys=registry(),
    )
    assert [(f.code, f.variant) for f in findings] == [(C.WITNESS_MISMATCH, "signature")]


def test_deep_finds_non_canonical_entries_and_bad_nodes():
    log = FakeLog(8, head_every=8)
    body = log.entries[3][1].replace(b'{"at"', b'{ "at"', 1)
    leaf = merkle.leaf_hash(body)
    log.entries[3] = (3, body, leaf, "issue", "")
    log.nodes[3] = leaf
    tree = merkle.MemoryTree()
    for seq in range(8):
        tree.append_leaf(log.nodes[seq])
    log.heads[8] = FakeLog.head(8, tree.root())
    checker = log.check(deep=True, witness=WitnessLog(LOG, {8: tree.root()}))
    assert [(f.code, f.variant, f.index) for f in checker.findings.items] == [
        (C.ALTERED_ENTRY, "not_canonical", 3)
    ]
    stored = {key: value for key, value in tree._nodes.items()}
    stored[(1, 2)] = bytes(32)
    del stored[(2, 0)]
    checker.findings.items.clear()
    for level in (1, 2, 3):
        count = 8 >> level
        nodes = {i: stored[(level, i)] for i in range(count) if (level, i) in stored}
        children = {i: stored[(level - 1, i)] for i in range(2 * count) if (level - 1, i) in stored}
        checker.check_nodes(level, 0, count, nodes, children)
    found = [(f.variant, f.params["level"], f.params["node_index"]) for f in checker.findings.items]
    assert found == [("wrong", 1, 2), ("missing", 2, 0)]


# --- The fast path for whole clean chunks ---------------------------------------------------------


def summary(checker: LogChecker) -> tuple[object, ...]:
    found = [(f.code, f.variant, f.index, f.size) for f in checker.findings.items]
    return (found, checker.heads, checker.heads_checked, checker.signatures_checked, checker.entries,
            checker.fold_seqs, bytes(checker.flags), checker.tree.root())  # fmt: skip


@pytest.mark.parametrize("chunk", [1, 2, 4, 8, 16, 64])
@pytest.mark.parametrize("size", [1, 7, 8, 20, 37, 64])
def test_the_fast_path_agrees_with_the_entry_by_entry_path(size, chunk):
    log = FakeLog(size, head_every=3)
    fast = log.check(chunk=chunk, fast=True)
    assert summary(fast) == summary(FakeLog(size, head_every=3).check(chunk=chunk, fast=False))
    assert fast.findings.items == [] and log.fast_chunks == -(-size // chunk)


def test_the_fast_path_reads_red_letters_voids_and_refs_from_the_entry_bytes():
    log = FakeLog(16, head_every=16)
    tree = merkle.MemoryTree()
    for seq in range(16):
        if seq in (6, 9):
            kind, ref = ("void", None) if seq == 6 else ("restore", "CASE-2026-0001")
            body = entry_bytes(
                log=LOG, seq=seq, kind=kind, at="2026-11-27T01:00:00Z", invoice=invoice(seq), ref=ref
            )
            log.entries[seq] = (seq, body, merkle.leaf_hash(body), kind, ref or "")
            log.nodes[seq] = merkle.leaf_hash(body)
        tree.append_leaf(log.nodes[seq])
    log.heads[16] = FakeLog.head(16, tree.root())
    log.tree = tree
    checker = log.check(chunk=16, fast=True)
    assert log.fast_chunks == 1 and checker.findings.items == []
    assert checker.fold_seqs == [4, 6, 14] and checker.flags[6] == 1 | 4


@pytest.mark.parametrize("damage", ["missing", "flipped", "leaf_node", "seq", "misaligned", "deep"])
def test_an_irregular_chunk_is_refused_without_side_effects(damage):
    log = FakeLog(8, head_every=4)
    rows = [log.entries[s] for s in range(8)]
    bodies, stored, nodes = [r[1] for r in rows], [r[2] for r in rows], [log.nodes[s] for s in range(8)]
    start, heads = 0, [log.heads[4], log.heads[8]]
    if damage == "missing":
        del bodies[3], stored[3]
    elif damage == "flipped":
        bodies[3] = bodies[3].replace(b"100.00", b"100.01", 1)
    elif damage == "leaf_node":
        nodes[3] = bytes(32)
    elif damage == "seq":
        bodies[2], bodies[3], stored[2], stored[3] = bodies[3], bodies[2], stored[3], stored[2]
        nodes[2], nodes[3] = nodes[3], nodes[2]
    keys, witness = registry(), log.witness()
    checker = LogChecker(
        LOG, end=8, log_size=8, head_size=8, keys=keys, witness=witness, deep=damage == "deep"
    )
    if damage == "misaligned":
        checker.check_range(0, 2, rows[:2], {0: nodes[0], 1: nodes[1]}, [])
        start, bodies, stored, nodes = 2, bodies[2:], stored[2:], nodes[2:]
    before = summary(checker)
    assert checker.check_chunk(start, bodies, stored, nodes, heads) is False
    assert summary(checker) == before


# --- Chunks hashed apart (helper processes), applied in order ------------------------------------


@pytest.mark.parametrize("count", [0, 1, 2, 3, 5, 8, 13, 64, 100, 8191, 8192])
def test_subtree_spans_are_the_aligned_perfect_subtrees_largest_first(count):
    spans = subtree_spans(count)
    offset = 0
    for level, index in spans:
        assert index << level == offset  # aligned, contiguous
        offset += 1 << level
    assert offset == count and [level for level, _ in spans] == sorted({lv for lv, _ in spans}, reverse=True)


@pytest.mark.parametrize("chunk", [1, 2, 4, 8, 16, 64])
@pytest.mark.parametrize("size", [1, 7, 8, 20, 37, 64])
def test_chunks_hashed_apart_and_out_of_order_agree_with_one_pass(size, chunk):
    apart = FakeLog(size, head_every=3)
    checker = apart.check(chunk=chunk, apart=True)
    assert summary(checker) == summary(FakeLog(size, head_every=3).check(chunk=chunk, fast=False))
    assert checker.findings.items == [] and apart.fast_chunks == -(-size // chunk)


def _flip(log: FakeLog) -> None:
    seq, body, leaf, kind, ref = log.entries[5]
    log.entries[5] = (seq, body.replace(b'"100.00"', b'"100.01"', 1), leaf, kind, ref)


def _rewrite(log: FakeLog) -> None:
    body = log.entries[9][1].replace(b'"-100.00"', b'"-900.00"', 1)
    log.entries[9] = (9, body, merkle.leaf_hash(body), "red_letter", "")
    log.nodes[9] = merkle.leaf_hash(body)


def _swap(log: FakeLog) -> None:
    a, b = log.entries[10], log.entries[11]
    log.entries[10], log.entries[11] = (10, *b[1:]), (11, *a[1:])


def _head(log: FakeLog) -> None:
    log.heads[12] = FakeLog.head(12, bytes(32))


def _truncate(log: FakeLog) -> None:
    for seq in (17, 18, 19):
        del log.entries[seq], log.nodes[seq]


def _delete(log: FakeLog) -> None:
    del log.entries[6]


@pytest.mark.parametrize("chunk", [2, 4, 8])
@pytest.mark.parametrize("damage", [_flip, _rewrite, _swap, _head, _truncate, _delete])
def test_a_broken_log_hashed_apart_gives_exactly_the_findings_of_one_pass(damage, chunk):
    apart, serial = FakeLog(20), FakeLog(20)
    damage(apart)
    damage(serial)
    found = apart.check(chunk=chunk, apart=True)
    assert summary(found) == summary(serial.check(chunk=chunk, nodes_in_fast=False))
    assert found.findings.items and apart.fast_chunks < -(-20 // chunk)


def test_a_digest_is_refused_when_it_cannot_be_applied_here():
    log = FakeLog(16, head_every=4)
    tails = EntryTails(LOG)
    bodies = [log.entries[s][1] for s in range(16)]
    stored = [log.entries[s][2] for s in range(16)]
    heads = [log.heads[4], log.heads[8]]

    def fresh(deep: bool = False) -> LogChecker:
        return LogChecker(LOG, end=16, log_size=16, head_size=16, keys=registry(), deep=deep)

    whole = digest_chunk(tails, 0, 8, bodies[:8], stored[:8], points=[4, 8])
    later = digest_chunk(tails, 8, 16, bodies[8:], stored[8:], points=[12, 16])
    blind = digest_chunk(tails, 0, 8, bodies[:8], stored[:8])  # hashed without the head at 4
    assert whole is not None and later is not None and blind is not None
    for checker, digest in ((fresh(), later), (fresh(), blind), (fresh(deep=True), whole)):
        before = summary(checker)
        assert checker.apply_chunk(digest, heads) is False
        assert summary(checker) == before
    checker = fresh()
    assert checker.apply_chunk(whole, heads) and checker.apply_chunk(later, [log.heads[12], log.heads[16]])
    assert checker.tree.root() == log.tree.root(16) and checker.heads_checked == 4


@pytest.mark.parametrize("damage", ["short", "misaligned", "null_leaf", "other_log", "wrong_seq"])
def test_digest_chunk_returns_none_for_anything_irregular(damage):
    log = FakeLog(8, head_every=8)
    bodies = [log.entries[s][1] for s in range(8)]
    stored: list[bytes | None] = [log.entries[s][2] for s in range(8)]
    start, stop, tails = 0, 8, EntryTails(LOG)
    assert digest_chunk(tails, start, stop, bodies, stored) is not None
    if damage == "short":
        del bodies[-1], stored[-1]
    elif damage == "misaligned":
        start, stop = 2, 10
    elif damage == "null_leaf":
        stored[3] = None
    elif damage == "other_log":
        tails = EntryTails("91110105MA01EFGH56")
    elif damage == "wrong_seq":
        start, stop = 8, 16
    assert digest_chunk(tails, start, stop, bodies, stored) is None


# --- Invoices -----------------------------------------------------------------------------------------


def line(no: int, quantity: str, amount: int, tax: int) -> Line:
    rate = resolve_rate("0.06", __import__("datetime").date(2026, 11, 27))
    return Line(no, "x", "", "", "", Decimal(quantity), Decimal("1"), rate, amount, tax)


def red(original: str, *items: tuple[int, str, str, str]) -> dict[str, object]:
    lines = [{"original_no": no, "quantity": q, "amount": a, "tax": t} for no, q, a, t in items]
    return {"kind": "red_letter", "invoice": {"number": "R", "original_number": original, "lines": lines}}


def test_state_fold_follows_red_letters_and_voids():
    blue = [line(1, "1", 100000, 6000), line(2, "3", 9999, 600)]
    fold = StateFold()
    assert fold.expected_state("B", "blue", blue) is InvoiceState.NORMAL
    fold.add(red("B", (2, "-1", "-33.33", "-2.00")))
    assert fold.expected_state("B", "blue", blue) is InvoiceState.PARTLY_RED
    fold.add(red("B", (1, "-1", "-1000.00", "-60.00"), (2, "-2", "-66.66", "-4.00")))
    assert fold.expected_state("B", "blue", blue) is InvoiceState.FULLY_RED
    fold.add({"kind": "void", "invoice": {"number": "P"}})
    assert fold.expected_state("P", "blue", blue) is InvoiceState.VOIDED
    assert fold.expected_state("R", "red", blue) is InvoiceState.NORMAL
    fold.add(red("U", (1, "-x", "-1.00", "0.00")))
    fold.add(red("V", (1, "-1", "-1.00", "0.00")), trusted=False)
    assert fold.expected_state("U", "blue", blue) is None
    assert fold.expected_state("V", "blue", blue) is None


def imported_red(number: str, original: str, *items: tuple[int | None, str, str, str]) -> dict[str, object]:
    lines = [
        {"quantity": q, "amount": a, "tax": t} | ({"original_no": no} if no else {}) for no, q, a, t in items
    ]
    invoice = {"number": number, "colour": "red", "original_number": original, "lines": lines}
    return {"kind": "import", "invoice": invoice}


def test_imported_red_invoices_take_from_their_blue_until_their_import_is_reverted():
    blue = [line(1, "1", 100000, 6000), line(2, "3", 9999, 600)]
    fold = StateFold()
    fold.add({"kind": "import", "invoice": {"number": "B", "colour": "blue", "original_number": None}})
    assert fold.expected_state("B", "blue", blue) is InvoiceState.NORMAL
    fold.add(imported_red("R1", "B", (1, "-1", "-1000.00", "-60.00"), (None, "-1", "-1.00", "0.00")))
    assert fold.expected_state("B", "blue", blue) is InvoiceState.PARTLY_RED
    fold.add(imported_red("R2", "B", (2, "-3", "-99.99", "-6.00")))
    assert fold.expected_state("B", "blue", blue) is InvoiceState.FULLY_RED
    fold.add({"kind": "revert", "invoice": {"number": "R2", "original_number": "B"}})
    assert fold.expected_state("B", "blue", blue) is InvoiceState.PARTLY_RED
    assert fold.expected_state("R2", "red", blue) is InvoiceState.REVERTED
    fold.add({"kind": "revert", "invoice": {"number": "R1", "original_number": "B"}})
    assert fold.expected_state("B", "blue", blue) is InvoiceState.NORMAL
    fold.add({"kind": "revert", "invoice": {"number": "R3", "original_number": "C"}}, trusted=False)
    assert fold.expected_state("C", "blue", blue) is None


def test_document_diff_names_each_field():
    row = {"a": "1", "lines": [{"amount": "1.00"}, {"amount": "2.00"}], "buyer": {"name": "x"}}
    entry = {"a": "1", "lines": [{"amount": "1.00"}, {"amount": "3.00"}], "buyer": {"name": "y"}, "b": None}
    assert document_diff(row, entry) == [
        ("b", "—", "null"),
        ("buyer.name", "x", "y"),
        ("lines.1.amount", "2.00", "3.00"),
    ]
    assert document_diff({"lines": [1]}, {"lines": [1, 2]}) == [("lines.length", "1", "2")]
    assert document_diff({"no": 1}, {"no": True}) == [("no", "1", "true")]


def test_invoice_findings_compare_document_totals_origin_and_state():
    entry = {"kind": "issue", "invoice": {"number": "N", "total_amount": "1.00"}}
    clean = invoice_findings(
        log=LOG, number="N", index=3, row_document={"number": "N", "total_amount": "1.00"}, entry=entry,
        origin="issued", state="normal", expected_state=InvoiceState.NORMAL, stored={"total_amount": "1.00"},
    )  # fmt: skip
    assert clean == []
    found = invoice_findings(
        log=LOG, number="N", index=3, row_document={"number": "N", "total_amount": "1.00"}, entry=entry,
        origin="restored", state="normal", expected_state=InvoiceState.PARTLY_RED,
        stored={"total_amount": "2.00"},
    )  # fmt: skip
    assert [f.code for f in found] == [C.INVOICE_MISMATCH, C.INVOICE_STATE_MISMATCH]
    assert found[0].params["fields"] == "total_amount: 2.00 / 1.00; origin: restored / issued"
    assert "partly_red" in found[1].message_en and "partly_red" in found[1].message_zh


def test_flag_runs():
    flags = bytearray([1, 1, 0, 3, 1, 0, 0, 1])
    assert flag_runs(flags, 1) == [(0, 2), (4, 5), (7, 8)]
    assert flag_runs(flags, 0) == [(2, 3), (5, 7)]
    assert flag_runs(bytearray(), 0) == []


# --- Messages -----------------------------------------------------------------------------------------


def test_every_message_renders_in_both_languages():
    params = {
        "have": 1, "log_size": 2, "head_size": 3, "last": 4, "count": 5, "entry_seq": 6, "entry_log": LOG,
        "level": 1, "node_index": 2, "key_id": "k", "at": "t", "since": "s", "db_size": 7, "line": 8,
        "witness_size": 9, "fields": "f", "error": "e", "state": "normal", "expected": "fully_red",
        "column": "kind", "next": "n", "other": "91110105MA01EFGH56", "kind": "restore",
        "case": "BJ-2026-000001",
    }  # fmt: skip
    for key in MESSAGES:
        code, _dot, variant = key.partition(".")
        finding = Finding(FindingCode(code), LOG, index=1, size=2, number="N", variant=variant, params=params)
        for text in (finding.message_en, finding.message_zh):
            assert "{" not in text, (key, text)
    codes_with_messages = {key.partition(".")[0] for key in MESSAGES}
    assert codes_with_messages == {str(code) for code in FindingCode}


def test_only_lag_and_unverifiable_heads_are_info():
    info = {str(code) for code in FindingCode if Finding(code, LOG).severity is Severity.INFO}
    assert info == {"witness_lag", "head_unverifiable"}
    data = Finding(C.MISSING_ENTRY, LOG, index=3).to_json()
    assert (
        data["severity"] == "error" and data["index"] == 3 and data["message_zh"] == "日志缺少第 3 条条目。"
    )
