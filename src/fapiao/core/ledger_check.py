"""Recompute a ledger log from its rows and name every way the rows disagree (``fapiao ledger verify``).

Pure Python, no Django.  ``fapiao.ledger.verify`` streams one log's rows into a
:class:`LogChecker` in ``seq`` order, a chunk at a time, so a log of any length is checked
in constant memory: the tree is a *compact range* (:class:`CompactRange`, one hash per set
bit of the size) that yields the root at the current size in O(log n), which is all a head
or witness check needs.  A clean chunk can be hashed anywhere, even in another process
(:func:`~fapiao.core.ledger_chunk.digest_chunk`), and applied here with :meth:`LogChecker.apply_chunk`.

Where an entry row is missing, or its bytes no longer match its own leaf hash, the stored leaf
hash (the level-0 Merkle node) stands in for it in the recomputed tree: the broken entry is
reported once, and every head after it still says whether the *rest* of the log is intact.
Only when the leaf hash is gone too are later heads reported as unverifiable rather than wrong.

The findings (:mod:`fapiao.core.ledger_findings`), the witness file
(:mod:`fapiao.core.ledger_witness`) and the invoice helpers (:mod:`fapiao.core.ledger_invoices`)
live beside this module and are importable from it as before.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fapiao.core.canonical import canonical_bytes
from fapiao.core.choices import EntryKind
from fapiao.core.errors import FapiaoError
from fapiao.core.ledger_chunk import ChunkDigest, CompactRange, EntryTails, digest_chunk
from fapiao.core.ledger_findings import INFO_CODES, MESSAGES, Finding, FindingCode, Findings, Severity
from fapiao.core.ledger_heads import HeadChecks, HeadRow
from fapiao.core.ledger_invoices import StateFold, document_diff, flag_runs, invoice_findings
from fapiao.core.ledger_witness import WitnessLog, parse_witness
from fapiao.core.merkle import HASH_SIZE, wrong_nodes
from fapiao.core.signing import KeyRegistry

__all__ = [
    "COVERED",
    "INFO_CODES",
    "MESSAGES",
    "PRESENT",
    "SUSPECT",
    "VOID",
    "ChunkDigest",
    "CompactRange",
    "EntryRow",
    "Finding",
    "FindingCode",
    "Findings",
    "HeadRow",
    "LogChecker",
    "Severity",
    "StateFold",
    "WitnessLog",
    "digest_chunk",
    "document_diff",
    "flag_runs",
    "invoice_findings",
    "parse_entry",
    "parse_witness",
]

_sha256 = hashlib.sha256
C = FindingCode


# --- One log ----------------------------------------------------------------------------------------

# (seq, body, leaf_hash column, kind column, ref column)
EntryRow = tuple[int, bytes, bytes | None, str, str]

PRESENT, COVERED, VOID, SUSPECT = 1, 2, 4, 8
_FOLDED_KINDS = frozenset({EntryKind.RED_LETTER.value, EntryKind.VOID.value, EntryKind.REVERT.value})
# Entries that change an existing invoice's state and create no row of their own (not orphans).
_STATE_KINDS = frozenset({EntryKind.VOID.value, EntryKind.REVERT.value})
ENTRY_FIELDS = frozenset({"v", "log", "seq", "kind", "at", "invoice", "ref"})


def parse_entry(body: bytes) -> dict[str, Any] | None:
    """The entry as a dict, or None when it is not a JSON object with an entry's members."""
    try:
        entry = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(entry, dict) or set(entry) != ENTRY_FIELDS or not isinstance(entry["invoice"], dict):
        return None
    return entry


class LogChecker(HeadChecks):
    """Checks one log, fed in order with :meth:`check_range` and closed with :meth:`finish`.

    ``end`` bounds every position the log can have (the larger of its recorded size, its
    latest head's size and its last entry's seq + 1).  ``flags`` marks each position
    PRESENT, VOID, SUSPECT (content not to be trusted); the invoice pass adds COVERED.
    """

    def __init__(
        self,
        log: str,
        *,
        end: int,
        log_size: int,
        head_size: int,
        keys: KeyRegistry,
        witness: WitnessLog | None = None,
        deep: bool = False,
        cap: int = 100,
    ) -> None:
        self.log = log
        self.end = end
        self.log_size = log_size
        self.head_size = head_size
        self.keys = keys
        self.witness = witness
        self.deep = deep
        self.findings = Findings(cap)
        self.flags = bytearray(end)
        self.fold_seqs: list[int] = []
        self.tree = CompactRange()
        self.entries = 0
        self.heads = 0
        self.heads_checked = 0
        self.signatures_checked = 0
        self.last_present = -1
        self._pos = 0
        self._frozen_at: int | None = None  # first position with neither entry nor leaf hash
        self._missing: list[tuple[int, int]] = []  # runs [start, end) of absent rows not yet reported
        self._unverifiable: list[int] = []
        self._witness_sizes = sorted(witness.roots) if witness else []
        self._witness_next = 0  # witness sizes before this index were checked
        self.tails = EntryTails(log)
        self._fixed_nodes: dict[tuple[int, int], bytes] = {}  # recomputed hashes of bad stored nodes

    # -- feeding ---------------------------------------------------------------------------------

    def check_range(
        self,
        start: int,
        end: int,
        entries: Sequence[EntryRow],
        leaf_nodes: Mapping[int, bytes],
        heads: Sequence[HeadRow],
    ) -> None:
        """Positions ``[start, end)``, entry by entry: their entries (sorted by seq), level-0 nodes
        and the heads whose size lies in ``(start, end]``.  Calls must cover ``[0, self.end)`` in
        order (mixed freely with :meth:`check_chunk`)."""
        if start != self._pos:
            raise ValueError(f"check_range must continue at {self._pos}, not {start}")
        by_size = {head.size: head for head in heads}
        i, n = 0, len(entries)
        for point in self.points(start, end, heads):
            j = i
            while j < n and entries[j][0] < point:
                j += 1
            self._entries(entries[i:j], leaf_nodes, point)
            i = j
            self._checkpoint(point, by_size.get(point))
        self._entries(entries[i:], leaf_nodes, end)
        self._witness_next = bisect.bisect_right(self._witness_sizes, end)
        self._pos = end
        self._flush_settled()

    def check_chunk(
        self,
        start: int,
        bodies: Sequence[bytes],
        stored: Sequence[bytes],
        leaf_nodes: Sequence[bytes] | None,
        heads: Sequence[HeadRow],
    ) -> bool:
        """The fast path for a whole chunk ``[start, start + len(bodies))`` with every row present:
        entry bodies and their ``leaf_hash`` column (and level-0 nodes, unless None), in seq order.

        :func:`~fapiao.core.ledger_chunk.digest_chunk` then :meth:`apply_chunk`.  Returns False,
        having changed nothing, if anything disagrees at all (or ``deep`` is on); the caller then
        feeds the same chunk to :meth:`check_range`, which names what is wrong.
        """
        if not self.can_apply(start, len(bodies)):
            return False
        stop = start + len(bodies)
        points = self.points(start, stop, heads)
        digest = digest_chunk(self.tails, start, stop, bodies, stored, points=points, leaf_nodes=leaf_nodes)
        return digest is not None and self.apply_chunk(digest, heads)

    def can_apply(self, start: int, count: int) -> bool:
        """Whether a clean chunk ``[start, start + count)`` could be applied now."""
        width = 1 << max(count - 1, 0).bit_length()
        return not (
            self.deep
            or self._frozen_at is not None
            or start != self._pos
            or count <= 0
            or start % width
            or start + count > self.end
        )

    def apply_chunk(self, digest: ChunkDigest, heads: Sequence[HeadRow]) -> bool:
        """Keep a chunk that :func:`~fapiao.core.ledger_chunk.digest_chunk` found clean, once every
        head and witness root inside it agrees (``heads``: those with a size in the chunk).

        Returns False, having changed nothing, when one disagrees or the chunk cannot be applied
        here (not next, after a gap in the tree, ``deep``, or hashed for other points).
        """
        start, n = digest.start, digest.count
        stop = start + n
        if not self.can_apply(start, n):
            return False
        by_size = {head.size: head for head in heads}
        points = self.points(start, stop, heads)
        if not set(points) <= set(digest.points):
            return False
        roots = self._chunk_roots(digest, points, by_size)
        if roots is None:
            return False
        # Everything agrees: keep it.
        for point, root in roots.items():
            self._checkpoint(point, by_size.get(point), root)
        self._witness_next = bisect.bisect_right(self._witness_sizes, stop)
        for level, node in digest.prefix(n):
            self.tree.push(node, level)
        self.flags[start:stop] = bytes([PRESENT]) * n
        for seq, kind in digest.kinds.items():
            if kind in _STATE_KINDS:
                self.flags[seq] |= VOID
            if kind in _FOLDED_KINDS:
                self.fold_seqs.append(seq)
        self.entries += n
        self.last_present = stop - 1
        self._pos = stop
        self._flush_settled()
        return True

    def _chunk_roots(
        self, digest: ChunkDigest, points: Sequence[int], by_size: Mapping[int, HeadRow]
    ) -> dict[int, bytes] | None:
        """The root at every head or witnessed size inside the chunk; None if one disagrees."""
        roots: dict[int, bytes] = {}
        for point in points:
            prefix = self.tree.copy()
            for level, node in digest.prefix(point - digest.start):
                prefix.push(node, level)
            root = roots[point] = prefix.root()
            head = by_size.get(point)
            if head is not None and head.root != root:
                return None
            if self.witness is not None and self.witness.roots.get(point, root) != root:
                return None
        return roots

    def points(self, start: int, stop: int, heads: Sequence[HeadRow]) -> list[int]:
        """Sizes in ``(start, stop]`` where a head or the witness needs the root (size 0 too, at 0)."""
        low = (
            bisect.bisect_left(self._witness_sizes, start)
            if start == 0
            else bisect.bisect_right(self._witness_sizes, start)
        )
        high = bisect.bisect_right(self._witness_sizes, stop)
        sizes = {head.size for head in heads if start < head.size <= stop}
        sizes.update(self._witness_sizes[low:high])
        return sorted(sizes)

    def _is_witnessed(self, size: int) -> bool:
        return self.witness is not None and size in self.witness.roots

    def _entries(self, rows: Sequence[EntryRow], leaf_nodes: Mapping[int, bytes], stop: int) -> None:
        """The hot loop: rows are sorted and all below ``stop``; absent positions are filled in."""
        sha, flags, append, get_node = _sha256, self.flags, self.tree.append, leaf_nodes.get
        tail_of, pos, frozen, deep = self.tails.tail, self._pos, self._frozen_at is not None, self.deep
        for row in rows:
            seq, body, stored, kind, ref = row
            if seq != pos:
                self._absent(pos, seq, leaf_nodes)
                frozen = self._frozen_at is not None
            tail = tail_of(kind, ref)
            leaf = sha(b"\x00" + body).digest()
            node = get_node(seq)
            if leaf == stored and leaf == node and body.endswith(tail % seq):
                if not frozen:
                    append(leaf)
                flags[seq] = PRESENT | VOID if kind in _STATE_KINDS else PRESENT
                if kind in _FOLDED_KINDS:
                    self.fold_seqs.append(seq)
            else:
                standin = self._irregular(row, leaf, node)
                if not frozen:
                    append(standin)
            if deep:
                self._deep_entry(seq, body)
            pos = seq + 1
        self.entries += len(rows)
        if rows:
            self.last_present = rows[-1][0]
        self._pos = pos
        if pos < stop:
            self._absent(pos, stop, leaf_nodes)

    def _absent(self, start: int, stop: int, leaf_nodes: Mapping[int, bytes]) -> None:
        """Positions ``[start, stop)`` have no entry row; their leaf hashes stand in where stored."""
        if start >= stop:
            return
        if self._missing and self._missing[-1][1] == start:
            self._missing[-1] = (self._missing[-1][0], stop)
        else:
            self._missing.append((start, stop))
        for seq in range(start, stop):
            if self._frozen_at is not None:
                break
            node = leaf_nodes.get(seq)
            if node is None:
                self._frozen_at = seq
            else:
                self.tree.append(node)
        self._pos = stop

    def _flush_settled(self) -> None:
        """Report absent runs that an entry followed (only the last run can still be a truncation)."""
        if self._missing and self._pos > self._missing[-1][1]:
            self._flush_missing()

    def _flush_missing(self) -> None:
        for start, stop in self._missing:
            for seq in range(start, stop):
                self.findings.add(Finding(C.MISSING_ENTRY, self.log, index=seq))
        self._missing.clear()

    def _irregular(self, row: EntryRow, leaf: bytes, node: bytes | None) -> bytes:
        """An entry that failed a fast check: classify it, report it once, return its tree leaf."""
        seq, body, stored, kind, ref = row
        entry = parse_entry(body)
        self.flags[seq] = PRESENT | SUSPECT
        if entry is not None and leaf == stored and (entry["seq"] != seq or entry["log"] != self.log):
            params = {"entry_seq": entry["seq"], "entry_log": entry["log"]}
            self._report(C.OUT_OF_ORDER, seq, params=params)
            return node if node is not None else leaf
        if leaf != stored:
            self._report(C.ALTERED_ENTRY, seq, "leaf_hash")
            return node if node is not None else (stored if stored and len(stored) == HASH_SIZE else leaf)
        if node is None or leaf != node:
            # The body agrees with its own leaf hash: the tree is recomputed from it, so the heads
            # tell whether the node or the entry (with its leaf hash) was changed.
            self._report(C.ALTERED_ENTRY, seq, "no_node" if node is None else "node")
            self._fixed_nodes[(0, seq)] = leaf  # so --deep does not blame the parent node as well
            return leaf
        if entry is None:
            self._report(C.ALTERED_ENTRY, seq, "unparsable")
            return leaf
        # Authentic bytes whose row columns were edited: the content itself can still be trusted.
        self.flags[seq] = PRESENT | (VOID if entry["kind"] in _STATE_KINDS else 0)
        if entry["kind"] in _FOLDED_KINDS:
            self.fold_seqs.append(seq)
        pairs = (("kind", kind, entry["kind"]), ("ref", ref, entry["ref"]))
        columns = [name for name, column, signed in pairs if (column or None) != (signed or None)]
        if columns:
            self._report(C.ALTERED_ENTRY, seq, "columns", params={"column": ", ".join(columns)})
        else:
            self._report(C.ALTERED_ENTRY, seq, "not_canonical")
        return leaf

    def _deep_entry(self, seq: int, body: bytes) -> None:
        if self.flags[seq] & SUSPECT:
            return
        entry = parse_entry(body)
        if entry is None:
            self.flags[seq] |= SUSPECT
            self._report(C.ALTERED_ENTRY, seq, "unparsable")
            return
        try:
            canonical = canonical_bytes(entry) == body
        except FapiaoError:
            canonical = False
        if not canonical:
            self._report(C.ALTERED_ENTRY, seq, "not_canonical")

    def _report(
        self, code: FindingCode, index: int, variant: str = "", params: Mapping[str, Any] | None = None
    ) -> None:
        self.findings.add(Finding(code, self.log, index=index, variant=variant, params=dict(params or {})))

    # -- heads and the witness -------------------------------------------------------------------

    def _checkpoint(self, size: int, head: HeadRow | None, root: bytes | None = None) -> None:
        self._flush_settled()
        if root is None:
            known = self._frozen_at is None or size <= self._frozen_at
            root = self.tree.root() if known and self.tree.size == size else None
        if head is not None:
            self._check_head(head, root)
        if self._is_witnessed(size):
            self._check_witness(size, head, root)

    def misplaced(self, rows: Iterable[tuple[int, bytes]]) -> None:
        """Rows whose seq is negative: no position can hold them."""
        for seq, body in rows:
            entry = parse_entry(body)
            params = {
                "entry_seq": entry["seq"] if entry else "?",
                "entry_log": entry["log"] if entry else "?",
            }
            self._report(C.OUT_OF_ORDER, seq, params=params)

    def finish(self) -> Findings:
        """Close the log: truncation, unsigned entries, sizes, unverifiable heads, witness lag."""
        if self._pos != self.end:
            raise ValueError(f"positions {self._pos}..{self.end - 1} were never checked")
        have = self.last_present + 1
        expected = max(self.log_size, self.head_size)
        if self._missing and self._missing[-1][1] == self.end and self._missing[-1][0] >= have:
            self._missing.pop()
            if have < expected:
                params = {"have": have, "log_size": self.log_size, "head_size": self.head_size}
                self.findings.add(Finding(C.TRUNCATED, self.log, size=expected, params=params))
        self._flush_missing()
        if have > self.head_size:
            first = self.head_size
            count = sum(1 for flag in self.flags[first:have] if flag & PRESENT)
            params = {"last": have - 1, "count": count}
            self.findings.add(Finding(C.UNSIGNED_ENTRY, self.log, index=first, params=params))
        reach = max(self.head_size, have)
        if self.log_size < reach:
            params = {"log_size": self.log_size}
            self.findings.add(Finding(C.LOG_SIZE_MISMATCH, self.log, size=reach, params=params))
        self._close_heads()
        return self.findings

    def check_nodes(
        self, level: int, start: int, stop: int, nodes: Mapping[int, bytes], children: Mapping[int, bytes]
    ) -> None:
        """``--deep``: stored nodes ``(level, start..stop-1)`` against their stored children.

        Called level by level from 1 up (level 0 is checked against the entries), so every
        node a proof can use is tied to the leaves by induction.  A node found wrong or missing
        is replaced by its recomputed hash for the level above, so only it is named.
        """
        for index, missing in wrong_nodes(level, start, stop, nodes, children, fixed=self._fixed_nodes):
            params = {"level": level, "node_index": index}
            variant = "missing" if missing else "wrong"
            self.findings.add(Finding(C.NODE_MISMATCH, self.log, variant=variant, params=params))
