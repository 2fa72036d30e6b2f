"""RFC 9162 §2.1 Merkle tree: known answers, pymerkle cross-checks and tamper properties.

Known-answer data is the RFC 6962 reference data published with transparency-dev/merkle
and Trillian, typed in from:
  * transparency-dev/merkle ``testonly/constants.go`` (leaf inputs, NodeHashes, RootHashes),
  * transparency-dev/merkle ``testonly/reference_test.go`` (TestRefInclusionProof,
    TestRefConsistencyProof; 0-based leaf indices),
  * transparency-dev/merkle ``proof/verify_test.go`` and google/trillian
    ``merkle/log_verifier_test.go`` (inclusionProofs with 1-based leaf numbers,
    consistencyProofs, and the corruption probes reproduced in ``test_known_*_corruptions``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymerkle import InmemoryTree

from fapiao.core.errors import InvalidValueError
from fapiao.core.merkle import (
    EMPTY_ROOT,
    MemoryTree,
    NodeKey,
    append_needs,
    append_nodes,
    consistency_needs,
    consistency_proof,
    inclusion_needs,
    inclusion_proof,
    leaf_hash,
    leaf_hashes,
    node_hash,
    root_from,
    root_needs,
    tree_root,
    verify_consistency,
    verify_inclusion,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


LEAF_INPUTS = [h(x) for x in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                              "606162636465666768696a6b6c6d6e6f")]  # fmt: skip
# RootHashes(): index = tree size.
ROOTS = [
    h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]
# NodeHashes(): [level][index] of every perfect subtree of the 8-leaf tree.
NODE_HASHES = [
    [
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
        h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
        h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ],
    [
        h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ],
    [
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    [h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")],
]
N = NODE_HASHES
# (index (0-based), size, PATH): reference_test.go plus verify_test.go's {leaf, size} converted to 0-based.
INCLUSION = [
    (0, 1, []),
    (0, 2, [N[0][1]]),
    (1, 2, [N[0][0]]),
    (2, 3, [N[1][0]]),
    (1, 5, [N[0][0], N[1][1], N[0][4]]),
    (0, 8, [N[0][1], N[1][1], N[2][1]]),
    (5, 8, [N[0][4], N[1][3], N[2][0]]),
    # verify_test.go inclusionProofs {1,8}, {6,8}, {3,3}, {2,5}:
    (0, 8, [h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")]),
    (5, 8, [h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (1, 5, [h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")]),
]  # fmt: skip
# (first, second, PROOF): verify_test.go consistencyProofs (reference_test.go has the first four).
CONSISTENCY = [
    (1, 1, []),
    (1, 8, [h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")]),
    (6, 8, [h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
    (2, 5, [h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")]),
    (6, 7, [h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
]  # fmt: skip
SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


def accepts_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """verify_inclusion, counting an out-of-range refusal as a rejection."""
    try:
        return verify_inclusion(leaf, index, size, proof, root)
    except InvalidValueError as exc:
        assert exc.code == "out_of_range"
        return False


def accepts_consistency(first: int, second: int, r1: bytes, r2: bytes, proof: Sequence[bytes]) -> bool:
    try:
        return verify_consistency(first, second, r1, r2, proof)
    except InvalidValueError as exc:
        assert exc.code == "out_of_range"
        return False


# ---------------------------------------------------------------- known answers


def test_hash_primitives() -> None:
    assert EMPTY_ROOT == ROOTS[0] == hashlib.sha256(b"").digest()
    assert leaf_hash(b"") == N[0][0]
    assert node_hash(N[0][0], N[0][1]) == N[1][0]
    assert leaf_hashes(LEAF_INPUTS) == N[0]


@pytest.mark.parametrize("size", range(9))
def test_roots(size: int) -> None:
    tree = MemoryTree(LEAF_INPUTS[:size])
    assert tree.root() == ROOTS[size]
    assert tree_root(leaf_hashes(LEAF_INPUTS[:size])) == ROOTS[size]
    assert MemoryTree(LEAF_INPUTS).root(size) == ROOTS[size]


def test_stored_nodes_are_the_reference_node_hashes() -> None:
    store: dict[NodeKey, bytes] = {}
    for i, leaf in enumerate(leaf_hashes(LEAF_INPUTS)):
        store.update(append_nodes(i, leaf, store.__getitem__))
    expected = {(level, i): value for level, row in enumerate(NODE_HASHES) for i, value in enumerate(row)}
    assert store == expected


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_known_inclusion(index: int, size: int, path: list[bytes]) -> None:
    tree = MemoryTree(LEAF_INPUTS)
    assert tree.inclusion_proof(index, size) == path
    assert verify_inclusion(leaf_hash(LEAF_INPUTS[index]), index, size, path, ROOTS[size])


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY)
def test_known_consistency(first: int, second: int, proof: list[bytes]) -> None:
    assert MemoryTree(LEAF_INPUTS).consistency_proof(first, second) == proof
    assert verify_consistency(first, second, ROOTS[first], ROOTS[second], proof)


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION[1:])
def test_known_inclusion_corruptions(index: int, size: int, path: list[bytes]) -> None:
    leaf, root = leaf_hash(LEAF_INPUTS[index]), ROOTS[size]
    probes: list[tuple[int, int, bytes, bytes, list[bytes]]] = [
        (index - 1, size, leaf, root, path),
        (index + 1, size, leaf, root, path),
        (index ^ 2, size, leaf, root, path),
        (index, size * 2, leaf, root, path),
        (index, size // 2, leaf, root, path),
        (index, size, b"WrongLeaf", root, path),
        (index, size, leaf, EMPTY_ROOT, path),
        (index, size, leaf, SOME_HASH, path),
        (index, size, leaf, root, [*path, b""]),
        (index, size, leaf, root, [*path, root]),
        (index, size, leaf, root, [b"", *path]),
        (index, size, leaf, root, [root, *path]),
        (index, size, leaf, root, path[:-1]),
        (index, size, leaf, root, [path[0], SOME_HASH, *path[1:]]),
    ]
    for i in range(len(path)):
        bad = list(path)
        bad[i] = bytes([bad[i][0] ^ 8]) + bad[i][1:]
        probes.append((index, size, leaf, root, bad))
    for i, s, lf, rt, pr in probes:
        assert not accepts_inclusion(lf, i, s, pr, rt), (i, s, lf, rt, pr)


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY[1:])
def test_known_consistency_corruptions(first: int, second: int, proof: list[bytes]) -> None:
    r1, r2 = ROOTS[first], ROOTS[second]
    probes: list[tuple[int, int, bytes, bytes, list[bytes]]] = [
        (first - 1, second, r1, r2, proof),
        (first + 1, second, r1, r2, proof),
        (first ^ 2, second, r1, r2, proof),
        (first, second * 2, r1, r2, proof),
        (first, second // 2, r1, r2, proof),
        (first, second, b"WrongRoot", r2, proof),
        (first, second, r1, b"WrongRoot", proof),
        (first, second, r2, r1, proof),
        (first, second, r1, r2, []),
        (first, second, r1, r2, [*proof, b""]),
        (first, second, r1, r2, [*proof, r1]),
        (first, second, r1, r2, [*proof, r2]),
        (first, second, r1, r2, [b"", *proof]),
        (first, second, r1, r2, [r1, *proof]),
        (first, second, r1, r2, [r2, *proof]),
        (first, second, r1, r2, [proof[0], *proof]),
        (first, second, r1, r2, proof[:-1]),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 16]) + bad[i][1:]
        probes.append((first, second, r1, r2, bad))
    for probe in probes:
        assert not accepts_consistency(*probe), probe


def test_verify_edge_cases() -> None:
    leaf = leaf_hash(b"data")
    assert verify_inclusion(leaf, 0, 1, [], leaf)
    assert not verify_inclusion(leaf, 0, 1, [], b"")
    assert not verify_inclusion(b"", 0, 1, [], leaf)
    assert not verify_inclusion(leaf, 0, 1, [], SOME_HASH)
    # Sizes that are always consistent (with the right roots and an empty proof).
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert verify_consistency(0, 5, EMPTY_ROOT, ROOTS[5], [])
    assert verify_consistency(3, 3, ROOTS[3], ROOTS[3], [])
    assert not verify_consistency(3, 3, ROOTS[3], ROOTS[4], [])
    assert not verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])
    assert not verify_consistency(0, 1, EMPTY_ROOT, ROOTS[1], [EMPTY_ROOT])
    assert not verify_consistency(1, 1, ROOTS[1], ROOTS[1], [EMPTY_ROOT])
    assert not verify_consistency(0, 1, SOME_HASH, ROOTS[1], [])
    assert not verify_consistency(1, 2, ROOTS[1], ROOTS[2], [])


@pytest.mark.parametrize(
    "call",
    [
        lambda: inclusion_needs(3, 3),
        lambda: inclusion_needs(-1, 3),
        lambda: inclusion_proof(0, 0, {}),
        lambda: consistency_needs(4, 3),
        lambda: consistency_proof(-1, 3, {}),
        lambda: root_needs(-1),
        lambda: root_from(-2, {}),
        lambda: append_needs(-1),
        lambda: verify_inclusion(EMPTY_ROOT, 3, 3, [], EMPTY_ROOT),
        lambda: verify_consistency(5, 4, EMPTY_ROOT, EMPTY_ROOT, []),
        lambda: MemoryTree(LEAF_INPUTS).root(9),
        lambda: MemoryTree(LEAF_INPUTS).inclusion_proof(0, 9),
        lambda: MemoryTree(LEAF_INPUTS).consistency_proof(2, 9),
    ],
)
def test_out_of_range(call: object) -> None:
    with pytest.raises(InvalidValueError) as info:
        call()  # type: ignore[operator]
    assert info.value.code == "out_of_range"


# ---------------------------------------------------------------- storage model

DATA = [i.to_bytes(4, "big") for i in range(2000)]


@cache
def ours() -> MemoryTree:
    return MemoryTree(DATA)


@cache
def theirs() -> InmemoryTree:
    tree = InmemoryTree(algorithm="sha256", disable_security=False)  # RFC 9162 0x00/0x01 prefixes
    for item in DATA:
        tree.append_entry(item)
    return tree


def store() -> dict[NodeKey, bytes]:
    return ours()._nodes


def only(keys: list[NodeKey]) -> dict[NodeKey, bytes]:
    """What a database would return for exactly these keys (raising if asked for more)."""
    return {key: store()[key] for key in keys}


@settings(max_examples=200, deadline=None)
@given(size=st.integers(0, 2000))
def test_root_needs_is_all_root_reads(size: int) -> None:
    keys = root_needs(size)
    assert len(keys) == bin(size).count("1")
    assert root_from(size, only(keys)) == theirs().get_root(size) == tree_root(leaf_hashes(DATA[:size]))


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_inclusion_matches_pymerkle(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, 2000))
    index = data.draw(st.integers(0, size - 1))
    keys = inclusion_needs(index, size)
    assert len(keys) <= 2 * size.bit_length()
    proof = inclusion_proof(index, size, only(keys))
    assert (
        proof == theirs().prove_inclusion(index + 1, size).path[1:]
    )  # pymerkle counts from 1, path[0] is the leaf
    assert verify_inclusion(leaf_hash(DATA[index]), index, size, proof, theirs().get_root(size))


def ref_mth(leaves: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH, written straight from the definition."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(ref_mth(leaves[:k]), ref_mth(leaves[k:]))


def ref_subproof(m: int, leaves: Sequence[bytes], whole: bool) -> list[bytes]:
    """RFC 9162 §2.1.4.1 SUBPROOF, written straight from the definition."""
    n = len(leaves)
    if m == n:
        return [] if whole else [ref_mth(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*ref_subproof(m, leaves[:k], whole), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_consistency_matches_rfc_and_pymerkle(data: st.DataObject) -> None:
    second = data.draw(st.integers(1, 2000))
    first = data.draw(st.integers(1, second))
    keys = consistency_needs(first, second)
    assert len(keys) <= 2 * second.bit_length() + 1
    proof = consistency_proof(first, second, only(keys))
    leaves = [store()[(0, i)] for i in range(second)]
    assert proof == (ref_subproof(first, leaves, True) if first < second else [])
    r1, r2 = theirs().get_root(first), theirs().get_root(second)
    assert verify_consistency(first, second, r1, r2, proof)
    if first < second:  # pymerkle's own (differently shaped) proof agrees on the same roots
        theirs().prove_consistency(first, second).verify(r1, r2)


@settings(max_examples=100, deadline=None)
@given(leaves=st.lists(st.binary(max_size=40), max_size=70))
def test_random_leaves_match_pymerkle(leaves: list[bytes]) -> None:
    tree = InmemoryTree(algorithm="sha256", disable_security=False)
    for leaf in leaves:
        tree.append_entry(leaf)
    assert MemoryTree(leaves).root() == tree.get_root() == tree_root(leaf_hashes(leaves))


@settings(max_examples=100, deadline=None)
@given(start=st.integers(0, 1000), count=st.integers(1, 200))
def test_batch_append_reads_only_the_frontier(start: int, count: int) -> None:
    """A DB store appends a batch after ONE read of root_needs(start) and computes the new head."""
    frontier = only(root_needs(start))
    created: dict[NodeKey, bytes] = {}
    reads: list[NodeKey] = []

    def get(key: NodeKey) -> bytes:
        reads.append(key)
        return created[key] if key in created else frontier[key]

    for i in range(start, start + count):
        assert set(append_needs(i)) <= set(root_needs(i))
        before = len(reads)
        created.update(append_nodes(i, store()[(0, i)], get))
        assert reads[before:] == append_needs(i)
    assert all(created[key] == store()[key] for key in created)
    end = start + count
    assert root_from(end, {**frontier, **created}) == ours().root(end)


# ---------------------------------------------------------------- tamper properties


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_flipped_byte_breaks_inclusion(data: st.DataObject) -> None:
    size = data.draw(st.integers(2, 2000))
    index = data.draw(st.integers(0, size - 1))
    proof = ours().inclusion_proof(index, size)
    which = data.draw(st.integers(0, len(proof) - 1))
    at, bit = data.draw(st.integers(0, 31)), data.draw(st.integers(0, 7))
    bad = list(proof)
    bad[which] = bad[which][:at] + bytes([bad[which][at] ^ (1 << bit)]) + bad[which][at + 1 :]
    leaf, root = store()[(0, index)], ours().root(size)
    assert verify_inclusion(leaf, index, size, proof, root)
    assert not verify_inclusion(leaf, index, size, bad, root)
    assert not accepts_inclusion(leaf, index, size, proof[:-1], root)
    assert not accepts_inclusion(leaf, index, size, [*proof, root], root)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_flipped_byte_breaks_consistency(data: st.DataObject) -> None:
    second = data.draw(st.integers(2, 2000))
    first = data.draw(st.integers(1, second - 1))
    proof = ours().consistency_proof(first, second)
    which = data.draw(st.integers(0, len(proof) - 1))
    at, bit = data.draw(st.integers(0, 31)), data.draw(st.integers(0, 7))
    bad = list(proof)
    bad[which] = bad[which][:at] + bytes([bad[which][at] ^ (1 << bit)]) + bad[which][at + 1 :]
    r1, r2 = ours().root(first), ours().root(second)
    assert verify_consistency(first, second, r1, r2, proof)
    assert not verify_consistency(first, second, r1, r2, bad)
    assert not verify_consistency(first, second, r1, r2, proof[:-1])
    assert not accepts_consistency(first + 1, second, r1, r2, proof)
