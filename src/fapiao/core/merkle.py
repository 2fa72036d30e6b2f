"""The Merkle tree of a ledger, exactly as RFC 9162 §2.1 (docs/spec/ledger.md).

Leaf hash = SHA-256(0x00 ‖ entry bytes); node = SHA-256(0x01 ‖ left ‖ right); the
empty tree's hash is SHA-256 of nothing.  Proofs are RFC 9162 PATH (§2.1.3.1) and
SUBPROOF (§2.1.4.1) lists, checked by the §2.1.3.2 and §2.1.4.2 algorithms.

**Storage model.**  A store keeps the hash of every *perfect, aligned* subtree:
key ``(level, index)`` covers leaves ``[index * 2**level, (index + 1) * 2**level)``,
so ``(0, i)`` is leaf *i*'s hash.  Every tree hash an operation needs is a fold of
O(log n) such nodes, and each ``*_needs`` function names them up front so a
database-backed store reads all of them in ONE query, then calls the matching
function with a mapping of what it read:

* append leaves ``start..end-1`` (one commit, any batch size): read
  ``root_needs(start)`` (the "frontier"; ``append_needs(i)`` is always a subset of
  ``root_needs(i)``), then for each leaf call ``append_nodes(i, leaf, get)`` with a
  ``get`` that looks in the nodes created so far, then in what was read; insert all
  created nodes; ``root_from(end, …)`` needs nothing beyond frontier + created.
* head: ``root_from(size, fetch(root_needs(size)))``.
* proofs: ``inclusion_proof(i, size, fetch(inclusion_needs(i, size)))`` and
  ``consistency_proof(m, n, fetch(consistency_needs(m, n)))``.

Bad arguments (negative, ``index >= size``, ``first > second``, ``size`` beyond the
tree) raise :class:`InvalidValueError` with code ``out_of_range``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from fapiao.core.errors import FapiaoError, InvalidValueError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MemoryTree",
    "MissingNodeError",
    "NodeKey",
    "append_needs",
    "append_nodes",
    "consistency_needs",
    "consistency_proof",
    "inclusion_needs",
    "inclusion_proof",
    "leaf_hash",
    "leaf_hashes",
    "node_hash",
    "root_from",
    "root_needs",
    "tree_root",
    "verify_consistency",
    "verify_inclusion",
]

NodeKey = tuple[int, int]
Range = tuple[int, int]
HASH_SIZE = 32
_sha256 = hashlib.sha256
EMPTY_ROOT = _sha256(b"").digest()


class MissingNodeError(FapiaoError):
    """The ledger's Merkle node {level}/{index} is missing; the tree cannot be computed."""

    status = 500
    code = "missing_node"


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 ‖ entry)."""
    return _sha256(b"\x00" + entry).digest()


def leaf_hashes(entries: Iterable[bytes]) -> list[bytes]:
    """:func:`leaf_hash` of each entry, in order."""
    return [_sha256(b"\x00" + e).digest() for e in entries]


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right)."""
    return _sha256(b"\x01" + left + right).digest()


def wrong_nodes(
    level: int,
    start: int,
    stop: int,
    nodes: Mapping[int, bytes],
    children: Mapping[int, bytes],
    *,
    fixed: dict[tuple[int, int], bytes],
) -> Iterator[tuple[int, bool]]:
    """Stored nodes ``(level, start..stop-1)`` that are not the hash of their two stored children,
    as ``(index, missing)``: the check of ``verify --deep``, fed level by level from 1 up.

    ``fixed`` maps ``(level, index)`` to the hash recomputed where a stored node was wrong (or a
    leaf node, where the caller knows better): children are read from it first, and every node
    found wrong is added, so the nodes above a wrong one are not blamed as well.  A node whose
    child is missing altogether is skipped: it is reported one level down.
    """
    for index in range(start, stop):
        left = fixed.get((level - 1, 2 * index)) or children.get(2 * index)
        right = fixed.get((level - 1, 2 * index + 1)) or children.get(2 * index + 1)
        if left is None or right is None:
            continue
        expected = node_hash(left, right)
        stored = nodes.get(index)
        if stored != expected:
            fixed[(level, index)] = expected
            yield index, stored is None


def _out_of_range(message: str, **params: int) -> InvalidValueError:
    return InvalidValueError(message, code="out_of_range", **params)


def _check_index(index: int, size: int) -> None:
    if size < 0 or not 0 <= index < size:
        raise _out_of_range("Leaf {index} is not in a tree of size {size}.", index=index, size=size)


def _check_sizes(first: int, second: int) -> None:
    if first < 0 or first > second:
        raise _out_of_range("Tree size {first} cannot precede size {second}.", first=first, second=second)


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n >= 2): RFC 9162's k."""
    return 1 << ((n - 1).bit_length() - 1)


def _range_keys(start: int, end: int) -> list[NodeKey]:
    """The perfect aligned nodes covering ``[start, end)``, left to right, largest first."""
    keys: list[NodeKey] = []
    while start < end:
        level = (start & -start).bit_length() - 1 if start else (end - start).bit_length() - 1
        while start + (1 << level) > end:
            level -= 1
        keys.append((level, start >> level))
        start += 1 << level
    return keys


def _node(nodes: Mapping[NodeKey, bytes], key: NodeKey) -> bytes:
    try:
        return nodes[key]
    except KeyError:
        raise MissingNodeError(level=key[0], index=key[1]) from None


def _range_hash(start: int, end: int, nodes: Mapping[NodeKey, bytes]) -> bytes:
    """MTH(D[start:end]) for a subtree whose start is aligned to its width's power of two."""
    keys = _range_keys(start, end)
    result = _node(nodes, keys[-1])
    for key in reversed(keys[:-1]):
        result = node_hash(_node(nodes, key), result)
    return result


def _keys_of(ranges: Sequence[Range]) -> list[NodeKey]:
    keys: dict[NodeKey, None] = {}
    for start, end in ranges:
        keys.update(dict.fromkeys(_range_keys(start, end)))
    return list(keys)


def append_needs(index: int) -> list[NodeKey]:
    """The left siblings :func:`append_nodes` reads when leaf ``index`` is appended."""
    if index < 0:
        raise _out_of_range("Leaf {index} cannot be appended.", index=index)
    needs: list[NodeKey] = []
    level = 0
    while index & 1:
        needs.append((level, index - 1))
        index >>= 1
        level += 1
    return needs


def append_nodes(index: int, leaf: bytes, get: Callable[[NodeKey], bytes]) -> list[tuple[NodeKey, bytes]]:
    """The perfect nodes completed by appending leaf hash ``leaf`` as leaf number ``index``.

    Always ``((0, index), leaf)`` first, then each parent this leaf completes;
    ``get`` is called only for the keys of :func:`append_needs` (index).
    """
    if index < 0:
        raise _out_of_range("Leaf {index} cannot be appended.", index=index)
    created: list[tuple[NodeKey, bytes]] = [((0, index), leaf)]
    level = 0
    current = leaf
    while index & 1:
        current = node_hash(get((level, index - 1)), current)
        index >>= 1
        level += 1
        created.append(((level, index), current))
    return created


def root_needs(size: int) -> list[NodeKey]:
    """The nodes :func:`root_from` folds: the perfect subtrees of ``[0, size)``."""
    if size < 0:
        raise _out_of_range("A tree cannot have size {size}.", size=size)
    return _range_keys(0, size)


def root_from(size: int, nodes: Mapping[NodeKey, bytes]) -> bytes:
    """The tree hash MTH(D[0:size]) from the nodes of :func:`root_needs` (size)."""
    if size < 0:
        raise _out_of_range("A tree cannot have size {size}.", size=size)
    return _range_hash(0, size, nodes) if size else EMPTY_ROOT


def _inclusion_ranges(index: int, size: int) -> list[Range]:
    ranges: list[Range] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo = mid
    ranges.reverse()
    return ranges


def inclusion_needs(index: int, size: int) -> list[NodeKey]:
    """The nodes :func:`inclusion_proof` reads (O(log size) of them)."""
    _check_index(index, size)
    return _keys_of(_inclusion_ranges(index, size))


def inclusion_proof(index: int, size: int, nodes: Mapping[NodeKey, bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(index, D[0:size]), deepest sibling first."""
    _check_index(index, size)
    return [_range_hash(s, e, nodes) for s, e in _inclusion_ranges(index, size)]


def _consistency_ranges(first: int, second: int) -> list[Range]:
    ranges: list[Range] = []
    if first in (0, second):
        return ranges
    lo, hi, m, whole = 0, second, first, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def consistency_needs(first: int, second: int) -> list[NodeKey]:
    """The nodes :func:`consistency_proof` reads (O(log second) of them)."""
    _check_sizes(first, second)
    return _keys_of(_consistency_ranges(first, second))


def consistency_proof(first: int, second: int, nodes: Mapping[NodeKey, bytes]) -> list[bytes]:
    """RFC 9162 §2.1.4.1 PROOF(first, D[0:second]) = SUBPROOF(first, D[0:second], true).

    Empty when ``first`` is 0 or equals ``second``.
    """
    _check_sizes(first, second)
    return [_range_hash(s, e, nodes) for s, e in _consistency_ranges(first, second)]


def _hashes_ok(*hashes: bytes) -> bool:
    return all(isinstance(h, bytes) and len(h) == HASH_SIZE for h in hashes)


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: is leaf *hash* ``leaf`` number ``index`` of the tree ``root`` of ``size``?"""
    _check_index(index, size)
    if not _hashes_ok(leaf, root, *proof):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: is the tree ``second_root`` of ``second`` an append-only extension of
    ``first_root`` of ``first``?  Equal sizes need equal roots and an empty proof; size 0 needs
    the empty-tree hash and an empty proof."""
    _check_sizes(first, second)
    if not _hashes_ok(first_root, second_root, *proof):
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof and first_root == EMPTY_ROOT
    if not proof:
        return False
    path = [first_root, *proof] if first & (first - 1) == 0 else list(proof)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


def tree_root(leaves: Sequence[bytes]) -> bytes:
    """MTH over leaf *hashes*, level by level (an odd last node moves up unchanged)."""
    level = list(leaves)
    if not level:
        return EMPTY_ROOT
    sha, prefix = _sha256, b"\x01"
    while len(level) > 1:
        odd = level[-1] if len(level) & 1 else None
        it = iter(level)
        level = [sha(prefix + left + right).digest() for left, right in zip(it, it, strict=False)]
        if odd is not None:
            level.append(odd)
    return level[0]


class MemoryTree:
    """An in-memory node store driven by the same functions a database store uses."""

    def __init__(self, entries: Iterable[bytes] = ()) -> None:
        self._nodes: dict[NodeKey, bytes] = {}
        self._size = 0
        for entry in entries:
            self.append(entry)

    @property
    def size(self) -> int:
        return self._size

    def __len__(self) -> int:
        return self._size

    def append(self, entry: bytes) -> int:
        """Append an entry's bytes; returns its index."""
        return self.append_leaf(leaf_hash(entry))

    def append_leaf(self, leaf: bytes) -> int:
        """Append an already computed leaf hash; returns its index."""
        index = self._size
        self._nodes.update(append_nodes(index, leaf, self._nodes.__getitem__))
        self._size += 1
        return index

    def leaf(self, index: int) -> bytes:
        _check_index(index, self._size)
        return self._nodes[(0, index)]

    def _size_or_current(self, size: int | None) -> int:
        if size is None:
            return self._size
        if not 0 <= size <= self._size:
            raise _out_of_range("The tree has only {have} leaves, not {size}.", have=self._size, size=size)
        return size

    def root(self, size: int | None = None) -> bytes:
        return root_from(self._size_or_current(size), self._nodes)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(index, self._size_or_current(size), self._nodes)

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        return consistency_proof(first, self._size_or_current(second), self._nodes)
