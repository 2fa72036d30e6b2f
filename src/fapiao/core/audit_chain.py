"""The audit trail's chain: record bytes, and recomputing a log to name what was changed.

Pure Python, no Django.  An audit log is an RFC 9162 Merkle log (:mod:`fapiao.core.merkle`)
whose leaves are :func:`record_bytes` of each record: compact JSON with sorted keys, UTF-8,
no floats and ASCII keys only — for such documents byte-for-byte what RFC 8785 gives, at a
fraction of the cost.  A record's index is not in its bytes: the tree fixes each leaf's
position, so a record moved to another index still hashes to the leaf it was written as,
which is how :class:`AuditChecker` tells a *moved* record from an *edited* one.

:class:`AuditChecker` is fed a log's records in index order, a chunk at a time, with the stored
leaf nodes (level 0) and the signed heads, and reports by index: deleted records, edited
records, records at the wrong index, records beyond the log's size, records no signed head
covers, heads whose root the records no longer give, bad signatures, and disagreement with
the witness file.  Where a record is missing or altered its stored leaf node stands in for it,
so every later head still says whether the *rest* of the log is intact.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from fapiao.core.errors import _
from fapiao.core.ledger_check import CompactRange, HeadRow, WitnessLog
from fapiao.core.merkle import leaf_hash, wrong_nodes
from fapiao.core.signing import KeyRegistry, verify_head

__all__ = [
    "RECORD_VERSION",
    "AuditChecker",
    "AuditCode",
    "AuditFinding",
    "audit_stamp",
    "record_bytes",
    "record_document",
]

RECORD_VERSION = 1


def audit_stamp(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC (an audit record keeps microseconds)."""
    if moment.tzinfo is None:
        raise ValueError("an audit time must carry a time zone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_document(
    *,
    log: str,
    at: str,
    actor: Mapping[str, Any] | None,
    action: str,
    target: Mapping[str, str],
    request_id: str,
    client: str,
    before: Any,
    after: Any,
    note: str,
) -> dict[str, Any]:
    """What a record's leaf commits to (its index excepted)."""
    return {
        "v": RECORD_VERSION,
        "log": log,
        "at": at,
        "actor": dict(actor) if actor is not None else None,
        "action": action,
        "target": dict(target),
        "request_id": request_id,
        "client": client,
        "before": before,
        "after": after,
        "note": note,
    }


def _refuse_floats(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            raise ValueError("an audit record holds no floats")
        if isinstance(item, dict):
            if not all(isinstance(key, str) and key.isascii() for key in item):
                raise ValueError("audit record keys are ASCII strings")
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def record_bytes(document: Mapping[str, Any], *, check: bool = False) -> bytes:
    """The leaf bytes of a record: sorted keys, no whitespace, UTF-8 (RFC 8785 for these documents).

    ``check`` refuses floats and non-ASCII keys (the writer's snapshots never hold them).
    """
    if check:
        _refuse_floats(dict(document))
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8", "surrogatepass")


# --- Checking -----------------------------------------------------------------------------------


class AuditCode(StrEnum):
    DELETED = "record_deleted"
    EDITED = "record_edited"
    MOVED = "record_moved"
    NODE_MISSING = "node_missing"
    TREE_NODE_WRONG = "tree_node_wrong"
    TREE_NODE_MISSING = "tree_node_missing"
    BEYOND_SIZE = "record_beyond_size"
    UNSIGNED = "records_unsigned"
    SIZE_MISMATCH = "log_size_mismatch"
    HEAD_ROOT_MISMATCH = "head_root_mismatch"
    HEAD_UNVERIFIABLE = "head_unverifiable"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_KEY = "unknown_key"
    KEY_COMPROMISED = "key_compromised"
    WITNESS_MISMATCH = "witness_mismatch"
    WITNESS_TRUNCATED = "witness_truncated"
    WITNESS_LAG = "witness_lag"


INFO_CODES = frozenset({AuditCode.WITNESS_LAG})

A = AuditCode
# code -> (English msgid, Chinese text); placeholders come from the finding.
MESSAGES: dict[str, tuple[str, str]] = {
    A.DELETED: (
        _("Audit record {index} was deleted."),
        "第 {index} 条审计记录已被删除。",
    ),
    A.EDITED: (
        _("Audit record {index} was edited: it no longer hashes to the leaf it was written as."),
        "第 {index} 条审计记录已被修改：其哈希与写入时的叶节点不符。",
    ),
    A.MOVED: (
        _("Position {index} holds audit record {other}: records were reordered."),
        "第 {index} 个位置上存放的是第 {other} 条审计记录：记录顺序被调换。",
    ),
    A.NODE_MISSING: (
        _("The leaf node of audit record {index} is missing, so the record cannot be checked."),
        "第 {index} 条审计记录的叶节点缺失，无法核对该记录。",
    ),
    A.TREE_NODE_WRONG: (
        _("The stored Merkle node {level}/{node_index} is not the hash of its two children."),
        "保存的默克尔节点 {level}/{node_index} 不等于其两个子节点的哈希：经过它的审计证明将无法通过。",
    ),
    A.TREE_NODE_MISSING: (
        _("The stored Merkle node {level}/{node_index} is missing."),
        "保存的默克尔节点 {level}/{node_index} 缺失：无法为其下的审计记录生成证明。",
    ),
    A.BEYOND_SIZE: (
        _("Audit record {index} lies beyond the log's size {size}: it was added outside the application."),
        "第 {index} 条审计记录超出了日志大小 {size}：它是在应用之外添加的。",
    ),
    A.UNSIGNED: (
        _("Audit records {index} to {last} ({count}) are not covered by any signed head."),
        "第 {index} 至 {last} 条审计记录（共 {count} 条）不在任何签名树头之内。",
    ),
    A.SIZE_MISMATCH: (
        _("The log records {size} audit records, but its signed heads reach {head_size}: it was truncated."),
        "日志记录的审计记录数为 {size}，但签名树头已达到 {head_size} 条：日志被截断。",
    ),
    A.HEAD_ROOT_MISMATCH: (
        _("The signed head of size {size} does not match the root recomputed from the records."),
        "大小为 {size} 的签名树头与由审计记录重新计算的根哈希不符。",
    ),
    A.HEAD_UNVERIFIABLE: (
        _("The signed head of size {size} cannot be recomputed: a record and its leaf node are both gone."),
        "由于审计记录及其叶节点均已缺失，大小为 {size} 的签名树头无法重新计算。",
    ),
    A.BAD_SIGNATURE: (
        _("The signature of the signed audit head of size {size} is invalid."),
        "大小为 {size} 的审计签名树头的签名无效。",
    ),
    A.UNKNOWN_KEY: (
        _("The audit head of size {size} is signed with key {key_id}, which is not in the key registry."),
        "大小为 {size} 的审计树头由密钥 {key_id} 签名，该密钥不在公钥登记表中。",
    ),
    A.KEY_COMPROMISED: (
        _("The audit head of size {size} is signed with key {key_id}, compromised since {since}."),
        "大小为 {size} 的审计树头由密钥 {key_id} 签名，该密钥自 {since} 起已被标记为泄露。",
    ),
    A.WITNESS_MISMATCH: (
        _("The witness saw this audit log at size {size} with a root the records no longer give: rewritten."),
        "见证文件记录了大小为 {size} 的审计日志根哈希，现有记录已算不出该值：日志被改写。",
    ),
    A.WITNESS_TRUNCATED: (
        _("The witness saw this audit log at size {size}, but the database has only {have} records."),
        "见证文件记录此审计日志已达 {size} 条，但数据库中只有 {have} 条。",
    ),
    A.WITNESS_LAG: (
        _("The witness has seen this audit log only up to size {size}; the database is at {have}."),
        "见证文件只记录到此审计日志的大小 {size}；数据库中为 {have}。",
    ),
}


@dataclass(frozen=True)
class AuditFinding:
    code: AuditCode
    log: str
    index: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_error(self) -> bool:
        return self.code not in INFO_CODES

    @property
    def template_en(self) -> str:
        return MESSAGES[self.code][0]

    @property
    def template_zh(self) -> str:
        return MESSAGES[self.code][1]

    def fill(self, template: str) -> str:
        values = {"log": self.log, "index": self.index, **self.params}
        try:
            return template.format(**values)
        except (KeyError, IndexError, ValueError):
            return template

    def to_json(self, *, message_en: str | None = None, message_zh: str | None = None) -> dict[str, Any]:
        return {
            "code": str(self.code),
            "severity": "error" if self.is_error else "info",
            "log": self.log,
            "index": self.index,
            "params": dict(self.params),
            "message_en": message_en if message_en is not None else self.fill(self.template_en),
            "message_zh": message_zh if message_zh is not None else self.fill(self.template_zh),
        }


class AuditChecker:
    """Checks one audit log; feed :meth:`check_range` in order over ``[0, size)``, then :meth:`finish`."""

    def __init__(
        self,
        log: str,
        *,
        size: int,
        sealed_size: int,
        keys: KeyRegistry,
        witness: WitnessLog | None = None,
        deep: bool = False,
    ) -> None:
        self.log = log
        self.size = size
        self.sealed_size = sealed_size
        self.keys = keys
        self.witness = witness
        self.deep = deep
        self.findings: list[AuditFinding] = []
        self.tree = CompactRange()
        self.frozen = False  # a position had neither record nor leaf node: later roots unknown
        self.records = 0
        self.heads = 0
        self.signatures = 0
        self.suspects: dict[int, bytes] = {}  # index -> leaf of a record that does not match its node
        self._pos = 0
        self._roots: dict[int, bytes] = {}  # recomputed roots at the witness's sizes
        self._latest: HeadRow | None = None
        self._fixed_nodes: dict[tuple[int, int], bytes] = {}  # (level, index) -> recomputed, where wrong

    def _add(self, code: AuditCode, index: int | None = None, **params: Any) -> None:
        self.findings.append(AuditFinding(code, self.log, index, params))

    def check_range(
        self,
        start: int,
        end: int,
        records: Mapping[int, bytes],
        nodes: Mapping[int, bytes],
        heads: Sequence[HeadRow],
    ) -> None:
        """Positions ``[start, end)``: the leaf hash of each record present (by index), the stored
        leaf nodes, and the heads whose size lies in ``(start, end]``, sorted by size."""
        if start != self._pos:
            raise ValueError(f"check_range must continue at {self._pos}, not {start}")
        by_size = {head.size: head for head in heads}
        witnessed = set(self.witness.roots) if self.witness else set()
        for index in range(start, end):
            self._position(index, records.get(index), nodes.get(index))
            size = index + 1
            if size in by_size:
                self._head(by_size[size])
            if size in witnessed and not self.frozen:
                self._roots[size] = self.tree.root()
        self._pos = end

    def _position(self, index: int, leaf: bytes | None, node: bytes | None) -> None:
        if leaf is not None:
            self.records += 1
        if leaf is None:
            self._add(AuditCode.DELETED, index)
            standin = node
        elif node is None:
            self._add(AuditCode.NODE_MISSING, index)
            standin = leaf
        elif leaf != node:
            self.suspects[index] = leaf  # edited or moved: resolved once all nodes are known
            standin = node
        else:
            standin = leaf
        if standin is None:
            self.frozen = True
        if not self.frozen and standin is not None:
            self.tree.append(standin)

    def _head(self, head: HeadRow) -> None:
        self.heads += 1
        self._latest = head
        if self.frozen:
            self._add(AuditCode.HEAD_UNVERIFIABLE, size=head.size)
        elif self.tree.root() != head.root:
            self._add(AuditCode.HEAD_ROOT_MISMATCH, size=head.size)
        if self.deep:
            self._signature(head)

    def _signature(self, head: HeadRow) -> None:
        self.signatures += 1
        trust = self.keys.trust(head.key_id, head.at)
        record = self.keys.get(head.key_id)
        if trust == "unknown_key" or record is None:
            self._add(AuditCode.UNKNOWN_KEY, size=head.size, key_id=head.key_id)
        elif trust == "key_compromised":
            since = record.compromised_since or ""
            self._add(AuditCode.KEY_COMPROMISED, size=head.size, key_id=head.key_id, since=since)
        elif not verify_head(head.document(self.log), head.signature, record.public_raw):
            self._add(AuditCode.BAD_SIGNATURE, size=head.size)

    def check_nodes(
        self, level: int, start: int, stop: int, nodes: Mapping[int, bytes], children: Mapping[int, bytes]
    ) -> None:
        """``--deep``: stored nodes ``(level, start..stop-1)`` against their two stored children.

        Called level by level from 1 up (the leaf nodes are checked against the records), so every
        node an audit proof can use is tied to the leaf nodes.  A node found wrong or missing is
        replaced by its recomputed hash for the level above, so only it is named.
        """
        for index, missing in wrong_nodes(level, start, stop, nodes, children, fixed=self._fixed_nodes):
            code = AuditCode.TREE_NODE_MISSING if missing else AuditCode.TREE_NODE_WRONG
            self._add(code, level=level, node_index=index)

    def resolve_suspects(self, positions: Mapping[bytes, Iterable[int]]) -> None:
        """``positions`` maps a suspect's leaf to the indexes whose stored leaf node equals it."""
        for index, leaf in sorted(self.suspects.items()):
            others = [other for other in positions.get(leaf, ()) if other != index]
            if others:
                self._add(AuditCode.MOVED, index, other=min(others))
            else:
                self._add(AuditCode.EDITED, index)

    def finish(self, *, beyond: Sequence[int] = (), latest_head_size: int | None = None) -> None:
        """Close the log: ``beyond`` are indexes of records at or past ``size``."""
        for index in beyond:
            self._add(AuditCode.BEYOND_SIZE, index, size=self.size)
        head_size = latest_head_size if latest_head_size is not None else 0
        if self._latest is not None and not self.deep:
            self._signature(self._latest)
        if head_size > self.size:
            self._add(AuditCode.SIZE_MISMATCH, size=self.size, head_size=head_size)
        elif head_size < self.size:
            last = self.size - 1
            self._add(AuditCode.UNSIGNED, head_size, last=last, count=self.size - head_size)
        self._check_witness()
        order = {code: n for n, code in enumerate(AuditCode)}
        self.findings.sort(key=lambda f: (f.index if f.index is not None else -1, order[f.code]))

    def _check_witness(self) -> None:
        if self.witness is None:
            return
        for size, root in sorted(self.witness.roots.items()):
            if size > self.size:
                self._add(AuditCode.WITNESS_TRUNCATED, size=size, have=self.size)
            elif size in self._roots and self._roots[size] != root:
                self._add(AuditCode.WITNESS_MISMATCH, size=size)
        if self.witness.max_size < self.size:
            self._add(AuditCode.WITNESS_LAG, size=self.witness.max_size, have=self.size)

    @property
    def errors(self) -> int:
        return sum(1 for finding in self.findings if finding.is_error)


def leaf_of(document: Mapping[str, Any]) -> bytes:
    return leaf_hash(record_bytes(document))
