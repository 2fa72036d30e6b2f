"""One aligned chunk of a log, hashed on its own: the fast path of ``fapiao ledger verify``.

A chunk of ``n`` entries starting at a multiple of the power of two at or above ``n`` is a
run of perfect subtrees of the RFC 9162 tree, so it can be hashed without knowing anything
before it.  :func:`digest_chunk` re-hashes the entry bytes, checks them against the stored
leaf hashes and their canonical tails (log, seq, kind), and keeps only the subtree nodes a
:class:`~fapiao.core.ledger_check.LogChecker` needs to fold the chunk into its tree and
into the roots at the head and witness sizes inside it: a few hundred bytes however long
the chunk.  It needs no state of the checker, so verify runs it in worker processes
(benchmarks/README.md (P5)) as well as in its own; the checker applies the digests in seq order.

Anything irregular makes it return None; the caller then checks that chunk entry by entry,
which names what is wrong.  Pure Python, no Django.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fapiao.core.canonical import canonical_bytes
from fapiao.core.choices import EntryKind
from fapiao.core.errors import FapiaoError

__all__ = ["ChunkDigest", "CompactRange", "EntryTails", "digest_chunk", "subtree_spans"]

_KINDS = tuple(kind.value for kind in EntryKind)
_LEAF_PREFIX = hashlib.sha256(b"\x00")  # copied per leaf: cheaper than concatenating the prefix
_NODE_PREFIX = hashlib.sha256(b"\x01")

NodeKey = tuple[int, int]  # (level, index within the chunk)


class CompactRange:
    """The perfect subtrees of ``[0, size)``, largest first: enough to append and to know the root.

    ``append`` costs one node hash amortised; ``root`` folds at most log2(size) hashes.
    """

    __slots__ = ("size", "stack")

    def __init__(self) -> None:
        self.size = 0
        self.stack: list[bytes] = []

    def append(self, leaf: bytes) -> None:
        stack, node, n = self.stack, leaf, self.size
        while n & 1:
            node = hashlib.sha256(b"\x01" + stack.pop() + node).digest()
            n >>= 1
        stack.append(node)
        self.size += 1

    def push(self, node: bytes, level: int) -> None:
        """Append a perfect subtree of ``2**level`` leaves; ``size`` must be a multiple of its width."""
        stack, n = self.stack, self.size >> level
        while n & 1:
            node = hashlib.sha256(b"\x01" + stack.pop() + node).digest()
            n >>= 1
        stack.append(node)
        self.size += 1 << level

    def extend(self, levels: Sequence[Sequence[bytes]], count: int) -> None:
        """Append the first ``count`` leaves of a chunk hashed level by level (``levels[0]`` are its
        leaves, ``levels[k][i]`` the node over its leaves ``[i·2^k, (i+1)·2^k)``).  The chunk must
        start at a multiple of the power of two at or above its length."""
        offset = 0
        for level in range(count.bit_length() - 1, -1, -1):
            if count >> level & 1:
                self.push(levels[level][offset >> level], level)
                offset += 1 << level

    def copy(self) -> CompactRange:
        twin = CompactRange()
        twin.size, twin.stack = self.size, list(self.stack)
        return twin

    def root(self) -> bytes:
        """RFC 9162 MTH(D[0:size]); the empty tree's hash is SHA-256 of nothing."""
        if not self.stack:
            return hashlib.sha256(b"").digest()
        result = self.stack[-1]
        for node in reversed(self.stack[:-1]):
            result = hashlib.sha256(b"\x01" + node + result).digest()
        return result


class EntryTails:
    """The bytes every canonical entry of one log ends with, by kind and ref (``%d`` is the seq).

    The canonical form sorts members, so ``kind``, ``log``, ``ref``, ``seq`` and ``v`` come last:
    checking that an entry ends with its tail checks its log, seq and kind without parsing it.
    """

    __slots__ = ("cache", "log")

    def __init__(self, log: str) -> None:
        self.log = log
        self.cache: dict[tuple[str, str], bytes] = {}

    def tail(self, kind: str, ref: str) -> bytes:
        tail = self.cache.get((kind, ref))
        if tail is None:
            ref_json = canonical_bytes(ref) if ref else b"null"
            head = b',"kind":%s,"log":%s,"ref":%s,"seq":' % (
                canonical_bytes(kind),
                canonical_bytes(self.log),
                ref_json,
            )
            tail = self.cache[(kind, ref)] = head.replace(b"%", b"%%") + b'%d,"v":1}'
        return tail

    def kind_of(self, body: bytes, seq: int) -> str | None:
        """The kind of an entry whose end is canonical and names this log and ``seq``; else None."""
        for kind in _KINDS:
            if body.endswith(self.tail(kind, "") % seq):
                return kind
        at = body.rfind(b'},"kind":')  # an entry with a ref: read its tail
        if at < 0:
            return None
        text = b"{" + body[at + 2 :]
        try:
            tail = json.loads(text)
            canonical = canonical_bytes(tail) == text
        except (ValueError, FapiaoError):
            return None
        ok = (
            canonical
            and set(tail) == {"kind", "log", "ref", "seq", "v"}
            and tail["log"] == self.log
            and tail["seq"] == seq
            and tail["v"] == 1
            and tail["kind"] in _KINDS
        )
        return str(tail["kind"]) if ok else None

    def chunk_kinds(self, start: int, bodies: Sequence[bytes]) -> dict[int, str] | None:
        """Seq -> kind of the entries that are not plain issues; None if any ends wrongly."""
        tail = self.tail(EntryKind.ISSUE.value, "")
        expected = [tail % seq for seq in range(start, start + len(bodies))]
        kinds: dict[int, str] = {}
        for i, ok in enumerate(map(bytes.endswith, bodies, expected)):
            if not ok:
                kind = self.kind_of(bodies[i], start + i)
                if kind is None:
                    return None
                kinds[start + i] = kind
        return kinds


def subtree_spans(count: int) -> list[tuple[int, int]]:
    """``[0, count)`` as aligned perfect subtrees, largest first: ``(level, index)`` pairs."""
    spans, offset = [], 0
    for level in range(count.bit_length() - 1, -1, -1):
        if count >> level & 1:
            spans.append((level, offset >> level))
            offset += 1 << level
    return spans


@dataclass(frozen=True)
class ChunkDigest:
    """A clean chunk ``[start, start + count)``: the subtree nodes its prefixes need, its odd kinds.

    ``nodes`` holds, for ``count`` and for every size in ``points``, the perfect subtrees that
    make up the chunk's first ``size - start`` leaves; ``kinds`` maps the seq of every entry that
    is not a plain issue (red letters, voids, entries with a ref) to its kind.
    """

    start: int
    count: int
    points: tuple[int, ...]
    nodes: dict[NodeKey, bytes]
    kinds: dict[int, str]

    def prefix(self, count: int) -> list[tuple[int, bytes]]:
        """The chunk's first ``count`` leaves as ``(level, hash)`` subtrees, largest first."""
        return [(level, self.nodes[(level, index)]) for level, index in subtree_spans(count)]


def _hash_levels(leaves: list[bytes]) -> list[list[bytes]]:
    """Every level of the chunk's subtrees: ``levels[k][i]`` covers leaves ``[i·2^k, (i+1)·2^k)``."""
    levels, node = [leaves], _NODE_PREFIX.copy
    while len(levels[-1]) > 1:
        pairs = iter(levels[-1])
        upper: list[bytes] = []
        append = upper.append
        for left, right in zip(pairs, pairs, strict=False):
            h = node()
            h.update(left)
            h.update(right)
            append(h.digest())
        levels.append(upper)
    return levels


def digest_chunk(
    tails: EntryTails,
    start: int,
    stop: int,
    bodies: Sequence[bytes],
    stored: Sequence[bytes],
    *,
    points: Iterable[int] = (),
    leaf_nodes: Sequence[bytes] | None = None,
) -> ChunkDigest | None:
    """Hash ``[start, stop)`` from its entry bytes (in seq order, one per position) and check it.

    ``stored`` is the ``leaf_hash`` column (and ``leaf_nodes`` the level-0 Merkle nodes, if
    given); ``points`` the sizes in ``(start, stop]`` whose roots the caller will check.
    Returns None when the chunk is not aligned, a row is missing, or any entry disagrees with
    its leaf hash or its canonical tail.
    """
    n = stop - start
    width = 1 << max(n - 1, 0).bit_length()
    if n <= 0 or start < 0 or start % width or len(bodies) != n or len(stored) != n:
        return None
    if leaf_nodes is not None and len(leaf_nodes) != n:
        return None
    leaves: list[bytes] = []
    append, leaf = leaves.append, _LEAF_PREFIX.copy
    try:
        for body in bodies:
            h = leaf()
            h.update(body)
            append(h.digest())
    except TypeError:  # a value that is not bytes (a text or NULL body): not clean
        return None
    if leaves != list(stored) or (leaf_nodes is not None and leaves != list(leaf_nodes)):
        return None
    kinds = tails.chunk_kinds(start, bodies)
    if kinds is None:
        return None
    levels = _hash_levels(leaves)
    wanted = sorted({point for point in points if start < point <= stop} | {stop})
    nodes = {
        (level, index): levels[level][index]
        for point in wanted
        for level, index in subtree_spans(point - start)
    }
    return ChunkDigest(start, n, tuple(wanted), nodes, kinds)
