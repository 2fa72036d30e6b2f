"""Recompute a ledger log from its rows and name every way the rows disagree (``fapiao ledger verify``).

Pure Python, no Django.  ``fapiao.ledger.verify`` streams one log's rows into a
:class:`LogChecker` in ``seq`` order, a chunk at a time, so a log of any length is checked
in constant memory: the tree is a *compact range* (:class:`CompactRange`, one hash per set
bit of the size) that yields the root at the current size in O(log n), which is all a head
or witness check needs.  What the checker cannot do alone (compare invoice rows, fold
red letters into states, find number gaps) is done with the helpers at the end of this
module, fed by the Django side.

Where an entry row is missing, or its bytes no longer match its own leaf hash, the stored leaf
hash (the level-0 Merkle node) stands in for it in the recomputed tree: the broken entry is
reported once, and every head after it still says whether the *rest* of the log is intact.
Only when the leaf hash is gone too are later heads reported as unverifiable rather than wrong.

Findings carry an English message (a gettext msgid, marked with ``_``) and a Chinese one;
the Django layer translates the msgid when the catalogue has it.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from fapiao.core.canonical import canonical_bytes
from fapiao.core.choices import Colour, EntryKind, InvoiceState, Origin
from fapiao.core.errors import FapiaoError, _
from fapiao.core.invoice import Line, state_after
from fapiao.core.merkle import HASH_SIZE
from fapiao.core.money import parse_money
from fapiao.core.signing import KeyRegistry, b64decode_strict, b64encode, verify_head

__all__ = [
    "CompactRange",
    "EntryRow",
    "Finding",
    "FindingCode",
    "HeadRow",
    "LogChecker",
    "Severity",
    "StateFold",
    "WitnessLog",
    "document_diff",
    "flag_runs",
    "invoice_findings",
    "parse_entry",
    "parse_witness",
]

_sha256 = hashlib.sha256


class Severity(StrEnum):
    ERROR = "error"
    INFO = "info"  # worth knowing, not a failure: `verify` still exits 0


class FindingCode(StrEnum):
    MISSING_ENTRY = "missing_entry"
    ALTERED_ENTRY = "altered_entry"
    OUT_OF_ORDER = "out_of_order"
    TRUNCATED = "truncated"
    UNSIGNED_ENTRY = "unsigned_entry"
    LOG_SIZE_MISMATCH = "log_size_mismatch"
    NODE_MISMATCH = "node_mismatch"
    HEAD_ROOT_MISMATCH = "head_root_mismatch"
    HEAD_UNVERIFIABLE = "head_unverifiable"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_KEY = "unknown_key"
    KEY_COMPROMISED = "key_compromised"
    WITNESS_MISMATCH = "witness_mismatch"
    WITNESS_LAG = "witness_lag"
    INVOICE_MISMATCH = "invoice_mismatch"
    INVOICE_STATE_MISMATCH = "invoice_state_mismatch"
    INVOICE_WITHOUT_ENTRY = "invoice_without_entry"
    ENTRY_WITHOUT_INVOICE = "entry_without_invoice"
    NUMBER_GAP = "number_gap"
    NUMBER_UNALLOCATED = "number_unallocated"


INFO_CODES = frozenset({FindingCode.WITNESS_LAG, FindingCode.HEAD_UNVERIFIABLE})

C = FindingCode
# "code" or "code.variant" -> (English msgid, Chinese text).  Placeholders come from the finding.
MESSAGES: dict[str, tuple[str, str]] = {
    C.MISSING_ENTRY: (_("Entry {index} is missing from the log."), "日志缺少第 {index} 条条目。"),
    f"{C.ALTERED_ENTRY}.leaf_hash": (
        _("Entry {index} does not hash to its stored leaf hash: its bytes were changed."),
        "第 {index} 条条目与其保存的叶哈希不符：条目内容已被改动。",
    ),
    f"{C.ALTERED_ENTRY}.node": (
        _("Entry {index} does not match the stored Merkle leaf node 0/{index}."),
        "第 {index} 条条目与保存的默克尔叶节点 0/{index} 不符。",
    ),
    f"{C.ALTERED_ENTRY}.no_node": (
        _("The stored Merkle leaf node of entry {index} is missing, so no proof can be made for it."),
        "第 {index} 条条目的默克尔叶节点缺失，无法为其生成证明。",
    ),
    f"{C.ALTERED_ENTRY}.columns": (
        _("Entry {index}: the row's kind or reference ({column}) disagrees with its signed bytes."),
        "第 {index} 条条目：记录中的类型或关联编号（{column}）与签名内容不符。",
    ),
    f"{C.ALTERED_ENTRY}.unparsable": (
        _("Entry {index} is not a JSON ledger entry."),
        "第 {index} 条条目不是 JSON 格式的账本条目。",
    ),
    f"{C.ALTERED_ENTRY}.not_canonical": (
        _("Entry {index} is not RFC 8785 canonical JSON."),
        "第 {index} 条条目不是 RFC 8785 规范 JSON。",
    ),
    C.OUT_OF_ORDER: (
        _("Position {index} holds entry {entry_seq} of log {entry_log}: entries are out of order."),
        "第 {index} 条位置上存放的是日志 {entry_log} 的第 {entry_seq} 条条目：条目顺序错乱。",
    ),
    C.TRUNCATED: (
        _(
            "The log ends after {have} entries but should have {size} "
            "(log size {log_size}, latest signed head {head_size}): it was truncated."
        ),
        "日志只剩 {have} 条条目，应有 {size} 条"
        "（日志记录 {log_size} 条，最新签名树头 {head_size} 条）：日志被截断。",
    ),
    C.UNSIGNED_ENTRY: (
        _("Entries {index} to {last} ({count}) are not covered by any signed head."),
        "第 {index} 至 {last} 条条目（共 {count} 条）不在任何签名树头之内。",
    ),
    C.LOG_SIZE_MISMATCH: (
        _("The log records {log_size} entries, but its entries and signed heads reach {size}."),
        "日志记录的条目数为 {log_size}，但条目与签名树头已达到 {size} 条。",
    ),
    f"{C.NODE_MISMATCH}.wrong": (
        _("The stored Merkle node {level}/{node_index} does not match its children: proofs through it fail."),
        "保存的默克尔节点 {level}/{node_index} 与其子节点不符：经过它的证明将无法通过。",
    ),
    f"{C.NODE_MISMATCH}.missing": (
        _("The stored Merkle node {level}/{node_index} is missing: proofs through it cannot be made."),
        "默克尔节点 {level}/{node_index} 缺失：无法生成经过它的证明。",
    ),
    C.HEAD_ROOT_MISMATCH: (
        _("The signed head of size {size} does not match the root recomputed from the entries."),
        "大小为 {size} 的签名树头与由条目重新计算的根哈希不符。",
    ),
    C.HEAD_UNVERIFIABLE: (
        _("{count} signed heads from size {size} on cannot be recomputed: entries and leaf hashes are gone."),
        "由于条目及其叶哈希缺失，从大小 {size} 起的 {count} 个签名树头无法重新计算。",
    ),
    C.BAD_SIGNATURE: (
        _("The signature of the signed head of size {size} is invalid."),
        "大小为 {size} 的签名树头的签名无效。",
    ),
    C.UNKNOWN_KEY: (
        _("The head of size {size} is signed with key {key_id}, which is not in the key registry."),
        "大小为 {size} 的树头由密钥 {key_id} 签名，该密钥不在公钥登记表中。",
    ),
    C.KEY_COMPROMISED: (
        _("The head of size {size} ({at}) is signed with key {key_id}, compromised since {since}."),
        "大小为 {size} 的树头（{at}）由密钥 {key_id} 签名，该密钥自 {since} 起已被标记为泄露。",
    ),
    f"{C.WITNESS_MISMATCH}.root": (
        _("The witness saw size {size} of this log with a root the entries no longer give: rewritten."),
        "见证文件记录了大小为 {size} 的日志根哈希，现有条目已算不出该值：日志被改写。",
    ),
    f"{C.WITNESS_MISMATCH}.head": (
        _("The database's signed head of size {size} differs from the head the witness saw."),
        "数据库中大小为 {size} 的签名树头与见证文件记录的不一致。",
    ),
    f"{C.WITNESS_MISMATCH}.no_head": (
        _("The witness saw a signed head of size {size} that the database no longer has."),
        "见证文件记录了大小为 {size} 的签名树头，但数据库中已没有这个树头。",
    ),
    f"{C.WITNESS_MISMATCH}.smaller": (
        _("The witness saw this log at size {size}, but the database's log has only {db_size}."),
        "见证文件记录此日志已达 {size} 条，但数据库中的日志只有 {db_size} 条。",
    ),
    f"{C.WITNESS_MISMATCH}.fork": (
        _("The witness holds two different roots for size {size}: the log was forked."),
        "见证文件中大小为 {size} 的日志有两个不同的根哈希：日志出现分叉。",
    ),
    f"{C.WITNESS_MISMATCH}.signature": (
        _("The witness's head of size {size} (line {line}) has no valid signature by a trusted key."),
        "见证文件第 {line} 行（大小 {size}）的树头没有受信任密钥的有效签名。",
    ),
    f"{C.WITNESS_MISMATCH}.malformed": (
        _("Line {line} of the witness file is not a signed head."),
        "见证文件第 {line} 行不是签名树头。",
    ),
    f"{C.WITNESS_MISMATCH}.lost_log": (
        _("The witness saw log {log} at size {size}, but the database has no such merchant."),
        "见证文件记录了日志 {log}（大小 {size}），但数据库中没有这个商户。",
    ),
    f"{C.WITNESS_LAG}.behind": (
        _(
            "The witness saw this log up to size {witness_size}; the database is at {size} "
            "(normal when a crash came between a commit and the witness write)."
        ),
        "见证文件记录到大小 {witness_size}，数据库中为 {size}（提交后写入见证文件前中断时属正常）。",
    ),
    f"{C.WITNESS_LAG}.none": (
        _("The witness file has no head of this log yet."),
        "见证文件中还没有此日志的树头。",
    ),
    f"{C.WITNESS_LAG}.partial_line": (
        _("The witness file ends in an incomplete line {line}, which was ignored."),
        "见证文件最后一行（第 {line} 行）不完整，已忽略。",
    ),
    C.INVOICE_MISMATCH: (
        _("Invoice {number} differs from its ledger entry {index} (invoice row / entry): {fields}."),
        "发票 {number} 与其账本条目（第 {index} 条）不符（发票记录 / 账本条目）：{fields}。",
    ),
    f"{C.INVOICE_MISMATCH}.unreadable": (
        _("Invoice {number} cannot be turned back into its ledger document: {error}."),
        "发票 {number} 无法还原为账本中的发票内容：{error}。",
    ),
    C.INVOICE_STATE_MISMATCH: (
        _("Invoice {number} is recorded as {state}, but its ledger entries make it {expected}."),
        "发票 {number} 的状态记录为 {state}，但按账本条目应为 {expected}。",
    ),
    f"{C.INVOICE_WITHOUT_ENTRY}.no_seq": (
        _("Invoice {number} has no ledger entry."),
        "发票 {number} 没有账本条目。",
    ),
    f"{C.INVOICE_WITHOUT_ENTRY}.missing": (
        _("Invoice {number} points at ledger entry {index}, which does not exist."),
        "发票 {number} 对应的账本条目（第 {index} 条）不存在。",
    ),
    C.ENTRY_WITHOUT_INVOICE: (
        _("Ledger entry {index} records invoice {number}, which has no invoice row."),
        "账本第 {index} 条条目记录了发票 {number}，但发票表中没有这张发票。",
    ),
    C.NUMBER_GAP: (
        _("Invoice numbers {number} to {last} ({count}) were used up, but no invoice has them."),
        "发票号码 {number} 至 {last}（共 {count} 个）已被占用，但没有对应的发票。",
    ),
    f"{C.NUMBER_GAP}.single": (
        _("Invoice number {number} was used up, but no invoice has it."),
        "发票号码 {number} 已被占用，但没有对应的发票。",
    ),
    f"{C.NUMBER_UNALLOCATED}.single": (
        _("Invoice {number} lies beyond its number segment's next serial {next}."),
        "发票号码 {number} 超出了号段的下一个可用号码 {next}。",
    ),
    C.NUMBER_UNALLOCATED: (
        _("Invoices {number} to {last} ({count}) lie beyond their number segment's next serial {next}."),
        "发票号码 {number} 至 {last}（共 {count} 个）超出了号段的下一个可用号码 {next}。",
    ),
}


@dataclass(frozen=True)
class Finding:
    """One thing `verify` found.  ``log`` is the merchant's USCC (``""`` for the witness file itself)."""

    code: FindingCode
    log: str
    index: int | None = None
    size: int | None = None
    number: str | None = None
    variant: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def severity(self) -> Severity:
        return Severity.INFO if self.code in INFO_CODES else Severity.ERROR

    @property
    def message_key(self) -> str:
        return f"{self.code}.{self.variant}" if self.variant else str(self.code)

    @property
    def template_en(self) -> str:
        return MESSAGES[self.message_key][0]

    @property
    def template_zh(self) -> str:
        return MESSAGES[self.message_key][1]

    def fill(self, template: str) -> str:
        values = {"log": self.log, "index": self.index, "size": self.size, "number": self.number}
        values.update(self.params)
        try:
            return template.format(**values)
        except (KeyError, IndexError, ValueError):
            return template

    @property
    def message_en(self) -> str:
        return self.fill(self.template_en)

    @property
    def message_zh(self) -> str:
        return self.fill(self.template_zh)

    def to_json(self, *, message_zh: str | None = None, message_en: str | None = None) -> dict[str, Any]:
        return {
            "code": str(self.code),
            "severity": str(self.severity),
            "log": self.log,
            "index": self.index,
            "size": self.size,
            "number": self.number,
            "variant": self.variant or None,
            "params": dict(self.params),
            "message_zh": message_zh if message_zh is not None else self.message_zh,
            "message_en": message_en if message_en is not None else self.message_en,
        }


class Findings:
    """A log's findings, at most ``cap`` of each code kept (the rest only counted)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.items: list[Finding] = []
        self.counts: Counter[FindingCode] = Counter()

    def add(self, finding: Finding) -> None:
        self.counts[finding.code] += 1
        if self.counts[finding.code] <= self.cap:
            self.items.append(finding)

    @property
    def suppressed(self) -> dict[str, int]:
        return {str(code): n - self.cap for code, n in self.counts.items() if n > self.cap}

    @property
    def errors(self) -> int:
        return sum(n for code, n in self.counts.items() if code not in INFO_CODES)


# --- The tree ---------------------------------------------------------------------------------------


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
            node = _sha256(b"\x01" + stack.pop() + node).digest()
            n >>= 1
        stack.append(node)
        self.size += 1

    def push(self, node: bytes, level: int) -> None:
        """Append a perfect subtree of ``2**level`` leaves; ``size`` must be a multiple of its width."""
        stack, n = self.stack, self.size >> level
        while n & 1:
            node = _sha256(b"\x01" + stack.pop() + node).digest()
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
            return _sha256(b"").digest()
        result = self.stack[-1]
        for node in reversed(self.stack[:-1]):
            result = _sha256(b"\x01" + node + result).digest()
        return result


# --- Witness file -----------------------------------------------------------------------------------


@dataclass
class WitnessLog:
    """What the witness file says about one log: the root it saw at each size."""

    log: str
    roots: dict[int, bytes] = field(default_factory=dict)
    forks: set[int] = field(default_factory=set)

    @property
    def max_size(self) -> int:
        return max(self.roots, default=0)


def _witness_head(line: bytes) -> tuple[dict[str, Any], str, bytes]:
    item = json.loads(line)
    head, signature = item["head"], item["signature"]
    ok = (
        isinstance(head, dict)
        and isinstance(signature, str)
        and isinstance(head.get("log"), str)
        and isinstance(head.get("size"), int)
        and isinstance(head.get("root"), str)
    )
    if not ok:
        raise ValueError("not a signed head")
    root = b64decode_strict(head["root"])
    if len(root) != HASH_SIZE:
        raise ValueError("root is not 32 bytes")
    return head, signature, root


def parse_witness(
    lines: Iterable[bytes], *, keys: KeyRegistry | None = None
) -> tuple[dict[str, WitnessLog], list[Finding]]:
    """Read witness lines (``{"head": {...}, "signature": ...}``).  With ``keys``, check every signature.

    A last line cut short by a crash (no newline) is reported as info; any other unreadable
    line is an error.
    """
    logs: dict[str, WitnessLog] = {}
    findings: list[Finding] = []
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            head, signature, root = _witness_head(raw)
        except (ValueError, KeyError, TypeError, FapiaoError):
            if raw.endswith(b"\n"):
                findings.append(Finding(C.WITNESS_MISMATCH, "", variant="malformed", params={"line": number}))
            else:
                findings.append(Finding(C.WITNESS_LAG, "", variant="partial_line", params={"line": number}))
            continue
        witnessed = logs.setdefault(head["log"], WitnessLog(head["log"]))
        size = head["size"]
        if witnessed.roots.setdefault(size, root) != root:
            witnessed.forks.add(size)
        if keys is not None and not _trusted_signature(head, signature, keys):
            params = {"line": number}
            findings.append(
                Finding(C.WITNESS_MISMATCH, head["log"], size=size, variant="signature", params=params)
            )
    return logs, findings


def _trusted_signature(head: Mapping[str, Any], signature: str, keys: KeyRegistry) -> bool:
    key_id, at = head.get("key_id"), head.get("at")
    if not isinstance(key_id, str) or not isinstance(at, str) or keys.trust(key_id, at) != "ok":
        return False
    record = keys.get(key_id)
    return record is not None and verify_head(head, signature, record.public_raw)


# --- One log ----------------------------------------------------------------------------------------

# (seq, body, leaf_hash column, kind column, ref column)
EntryRow = tuple[int, bytes, bytes | None, str, str]

PRESENT, COVERED, VOID, SUSPECT = 1, 2, 4, 8
_FOLDED_KINDS = frozenset({EntryKind.RED_LETTER.value, EntryKind.VOID.value})
_KINDS = tuple(kind.value for kind in EntryKind)
ENTRY_FIELDS = frozenset({"v", "log", "seq", "kind", "at", "invoice", "ref"})


@dataclass(frozen=True)
class HeadRow:
    size: int
    root: bytes
    at: str
    key_id: str
    signature: str

    def document(self, log: str) -> dict[str, Any]:
        """The signed head as the API and receipts show it."""
        root = b64encode(self.root)
        return {"log": log, "size": self.size, "root": root, "at": self.at, "key_id": self.key_id}


def parse_entry(body: bytes) -> dict[str, Any] | None:
    """The entry as a dict, or None when it is not a JSON object with an entry's members."""
    try:
        entry = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(entry, dict) or set(entry) != ENTRY_FIELDS or not isinstance(entry["invoice"], dict):
        return None
    return entry


class LogChecker:
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
        self._tails: dict[tuple[str, str], bytes] = {}
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
        for point in self._points(start, end, heads):
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

        Hashes leaves and the chunk's subtrees level by level in comprehensions rather than entry
        by entry, and checks every head and witness root inside the chunk before keeping anything.
        Returns False, having changed nothing, if anything disagrees at all (or ``deep`` is on);
        the caller then feeds the same chunk to :meth:`check_range`, which names what is wrong.
        """
        n = len(bodies)
        width = 1 << max(n - 1, 0).bit_length()
        if self.deep or self._frozen_at is not None or start != self._pos or start % width or n == 0:
            return False
        if len(stored) != n or (leaf_nodes is not None and len(leaf_nodes) != n) or start + n > self.end:
            return False
        sha = _sha256
        leaves = [sha(b"\x00" + body).digest() for body in bodies]
        if leaves != list(stored) or (leaf_nodes is not None and leaves != list(leaf_nodes)):
            return False
        kinds = self._chunk_kinds(start, bodies)
        if kinds is None:
            return False
        levels = [leaves]
        while len(levels[-1]) > 1:
            pairs = iter(levels[-1])
            levels.append(
                [sha(b"\x01" + left + right).digest() for left, right in zip(pairs, pairs, strict=False)]
            )
        stop = start + n
        by_size = {head.size: head for head in heads}
        roots = self._chunk_roots(start, stop, levels, by_size)
        if roots is None:
            return False
        # Everything agrees: keep it.
        for point, root in roots.items():
            self._checkpoint(point, by_size.get(point), root)
        self._witness_next = bisect.bisect_right(self._witness_sizes, stop)
        self.tree.extend(levels, n)
        self.flags[start:stop] = bytes([PRESENT]) * n
        for seq, kind in kinds.items():
            if kind == EntryKind.VOID:
                self.flags[seq] |= VOID
            if kind in _FOLDED_KINDS:
                self.fold_seqs.append(seq)
        self.entries += n
        self.last_present = stop - 1
        self._pos = stop
        self._flush_settled()
        return True

    def _chunk_kinds(self, start: int, bodies: Sequence[bytes]) -> dict[int, str] | None:
        """Seq -> kind of the entries that are not plain issues; None if any ends wrongly."""
        tail = self._tails.get(("issue", "")) or self._tail("issue", "")
        expected = [tail % seq for seq in range(start, start + len(bodies))]
        others = [i for i, ok in enumerate(map(bytes.endswith, bodies, expected)) if not ok]
        kinds: dict[int, str] = {}
        for i in others:
            kind = self._tail_kind(bodies[i], start + i)
            if kind is None:
                return None
            kinds[start + i] = kind
        return kinds

    def _chunk_roots(
        self, start: int, stop: int, levels: Sequence[Sequence[bytes]], by_size: Mapping[int, HeadRow]
    ) -> dict[int, bytes] | None:
        """The root at every head or witnessed size inside the chunk; None if one disagrees."""
        roots: dict[int, bytes] = {}
        for point in self._points(start, stop, list(by_size.values())):
            prefix = self.tree.copy()
            prefix.extend(levels, point - start)
            root = roots[point] = prefix.root()
            head = by_size.get(point)
            if head is not None and head.root != root:
                return None
            if self.witness is not None and self.witness.roots.get(point, root) != root:
                return None
        return roots

    def _points(self, start: int, stop: int, heads: Sequence[HeadRow]) -> list[int]:
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

    def _tail_kind(self, body: bytes, seq: int) -> str | None:
        """The kind of an entry whose end is canonical and names this log and ``seq``; else None."""
        for kind in _KINDS:
            tail = self._tails.get((kind, "")) or self._tail(kind, "")
            if body.endswith(tail % seq):
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
            and tail["kind"] in {kind.value for kind in EntryKind}
        )
        return str(tail["kind"]) if ok else None

    def _is_witnessed(self, size: int) -> bool:
        return self.witness is not None and size in self.witness.roots

    def _entries(self, rows: Sequence[EntryRow], leaf_nodes: Mapping[int, bytes], stop: int) -> None:
        """The hot loop: rows are sorted and all below ``stop``; absent positions are filled in."""
        sha, flags, append, get_node = _sha256, self.flags, self.tree.append, leaf_nodes.get
        tails, pos, frozen, deep = self._tails, self._pos, self._frozen_at is not None, self.deep
        for row in rows:
            seq, body, stored, kind, ref = row
            if seq != pos:
                self._absent(pos, seq, leaf_nodes)
                frozen = self._frozen_at is not None
            tail = tails.get((kind, ref))
            if tail is None:
                tail = self._tail(kind, ref)
            leaf = sha(b"\x00" + body).digest()
            node = get_node(seq)
            if leaf == stored and leaf == node and body.endswith(tail % seq):
                if not frozen:
                    append(leaf)
                flags[seq] = PRESENT | VOID if kind == "void" else PRESENT
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

    def _tail(self, kind: str, ref: str) -> bytes:
        """The bytes every canonical entry of this log, kind and ref ends with (``%d`` is the seq)."""
        ref_json = canonical_bytes(ref) if ref else b"null"
        log_json = canonical_bytes(self.log)
        tail = b',"kind":%s,"log":%s,"ref":%s,"seq":' % (canonical_bytes(kind), log_json, ref_json)
        tail = tail.replace(b"%", b"%%") + b'%d,"v":1}'
        self._tails[(kind, ref)] = tail
        return tail

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
        self.flags[seq] = PRESENT | (VOID if entry["kind"] == "void" else 0)
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

    def _check_head(self, head: HeadRow, root: bytes | None) -> None:
        self.heads += 1
        if root is None:
            self._unverifiable.append(head.size)
        else:
            self.heads_checked += 1
            if root != head.root:
                self.findings.add(Finding(C.HEAD_ROOT_MISMATCH, self.log, size=head.size))
        trust = self.keys.trust(head.key_id, head.at)
        if trust == "unknown_key":
            self.findings.add(
                Finding(C.UNKNOWN_KEY, self.log, size=head.size, params={"key_id": head.key_id})
            )
        elif trust == "key_compromised":
            record = self.keys.get(head.key_id)
            since = record.compromised_since if record else "?"
            params = {"key_id": head.key_id, "at": head.at, "since": since}
            self.findings.add(Finding(C.KEY_COMPROMISED, self.log, size=head.size, params=params))
        elif self.deep or head.size == self.head_size:
            self.signatures_checked += 1
            record = self.keys.get(head.key_id)
            assert record is not None  # trust() said "ok"
            if not verify_head(head.document(self.log), head.signature, record.public_raw):
                self.findings.add(Finding(C.BAD_SIGNATURE, self.log, size=head.size))

    def _check_witness(self, size: int, head: HeadRow | None, root: bytes | None) -> None:
        assert self.witness is not None
        seen = self.witness.roots[size]
        db_size = max(self.log_size, self.head_size)
        if size in self.witness.forks:
            self._witness_finding(size, "fork")
        if size > db_size:
            self._witness_finding(size, "smaller", db_size=db_size)
        elif root is not None and root != seen:
            self._witness_finding(size, "root")
        elif head is None:
            self._witness_finding(size, "no_head")
        elif head.root != seen:
            self._witness_finding(size, "head")

    def _witness_finding(self, size: int, variant: str, **params: Any) -> None:
        self.findings.add(Finding(C.WITNESS_MISMATCH, self.log, size=size, variant=variant, params=params))

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
        if self._unverifiable:
            params = {"count": len(self._unverifiable)}
            finding = Finding(C.HEAD_UNVERIFIABLE, self.log, size=self._unverifiable[0], params=params)
            self.findings.add(finding)
        for size in self._witness_sizes[self._witness_next :]:
            self._check_witness(size, None, None)
        self._witness_next = len(self._witness_sizes)
        witnessed = self.witness.max_size if self.witness else 0
        if self.head_size and not witnessed:
            self.findings.add(Finding(C.WITNESS_LAG, self.log, size=self.head_size, variant="none"))
        elif witnessed < self.head_size:
            params = {"witness_size": witnessed}
            self.findings.add(
                Finding(C.WITNESS_LAG, self.log, size=self.head_size, variant="behind", params=params)
            )
        return self.findings

    def check_nodes(
        self, level: int, start: int, stop: int, nodes: Mapping[int, bytes], children: Mapping[int, bytes]
    ) -> None:
        """``--deep``: stored nodes ``(level, start..stop-1)`` against their stored children.

        Called level by level from 1 up (level 0 is checked against the entries), so every
        node a proof can use is tied to the leaves by induction.  A node found wrong or missing
        is replaced by its recomputed hash for the level above, so only it is named.
        """
        fixed = self._fixed_nodes
        for index in range(start, stop):
            left = fixed.get((level - 1, 2 * index)) or children.get(2 * index)
            right = fixed.get((level - 1, 2 * index + 1)) or children.get(2 * index + 1)
            if left is None or right is None:
                continue  # reported one level down
            expected = _sha256(b"\x01" + left + right).digest()
            stored = nodes.get(index)
            if stored == expected:
                continue
            fixed[(level, index)] = expected
            params = {"level": level, "node_index": index}
            variant = "missing" if stored is None else "wrong"
            self.findings.add(Finding(C.NODE_MISMATCH, self.log, variant=variant, params=params))


# --- Invoices: rows against entries, states folded from red letters, number runs ----------------------


class StateFold:
    """What a log's red-letter and void entries say about each blue invoice's state."""

    def __init__(self) -> None:
        self.taken: dict[str, dict[int, tuple[Decimal, int, int]]] = {}
        self.voided: set[str] = set()
        self.uncertain: set[str] = set()

    def add(self, entry: Mapping[str, Any] | None, *, trusted: bool = True) -> None:
        invoice = entry.get("invoice") if entry else None
        if not isinstance(invoice, Mapping):
            return
        kind = entry.get("kind") if entry else None
        if kind == EntryKind.VOID and isinstance(invoice.get("number"), str):
            (self.voided if trusted else self.uncertain).add(invoice["number"])
            return
        original = invoice.get("original_number")
        if kind != EntryKind.RED_LETTER or not isinstance(original, str):
            return
        if not trusted:
            self.uncertain.add(original)
            return
        try:
            additions = [
                (
                    int(line["original_no"]),
                    -Decimal(str(line["quantity"])),
                    -parse_money(line["amount"], allow_negative=True),
                    -parse_money(line["tax"], allow_negative=True),
                )
                for line in invoice["lines"]
            ]
        except (KeyError, TypeError, ValueError, InvalidOperation, FapiaoError):
            self.uncertain.add(original)
            return
        taken = self.taken.setdefault(original, {})
        for no, quantity, amount, tax in additions:
            q, a, t = taken.get(no, (Decimal(0), 0, 0))
            taken[no] = (q + quantity, a + amount, t + tax)

    def expected_state(self, number: str, colour: str, lines: Sequence[Line]) -> InvoiceState | None:
        """The state the entries give invoice ``number``; None when an altered entry hides it."""
        if number in self.uncertain:
            return None
        if number in self.voided:
            return InvoiceState.VOIDED
        if colour != Colour.BLUE:
            return InvoiceState.NORMAL
        return state_after(lines, self.taken.get(number, {}))


_KIND_ORIGIN: dict[str, Origin] = {
    EntryKind.ISSUE: Origin.ISSUED,
    EntryKind.RED_LETTER: Origin.ISSUED,
    EntryKind.IMPORT: Origin.IMPORTED,
    EntryKind.RESTORE: Origin.RESTORED,
    EntryKind.REISSUE: Origin.REISSUED,
}
_ABSENT = object()


def _show(value: object) -> str:
    if value is _ABSENT:
        return "—"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def document_diff(row: object, entry: object, path: str = "") -> list[tuple[str, str, str]]:
    """Where two invoice documents differ: ``(dotted path, row value, entry value)``, in key order."""
    if isinstance(row, Mapping) and isinstance(entry, Mapping):
        found: list[tuple[str, str, str]] = []
        for key in sorted(set(row) | set(entry)):
            child = f"{path}.{key}" if path else str(key)
            found += document_diff(row.get(key, _ABSENT), entry.get(key, _ABSENT), child)
        return found
    if isinstance(row, list) and isinstance(entry, list) and len(row) == len(entry):
        found = []
        for i, (left, right) in enumerate(zip(row, entry, strict=True)):
            found += document_diff(left, right, f"{path}.{i}")
        return found
    if type(row) is type(entry) and row == entry:
        return []
    if isinstance(row, list) and isinstance(entry, list):
        return [(f"{path}.length", str(len(row)), str(len(entry)))]
    return [(path, _show(row), _show(entry))]


def invoice_findings(
    *,
    log: str,
    number: str,
    index: int,
    row_document: Mapping[str, Any],
    entry: Mapping[str, Any],
    origin: str,
    state: str,
    expected_state: InvoiceState | None,
    stored: Mapping[str, str] | None = None,
) -> list[Finding]:
    """An invoice row against the entry it points at and the state its log's entries give it.

    ``row_document`` is rebuilt from the row and its lines; ``stored`` holds row columns kept
    beside them (the stored totals), each compared with the entry member of the same name.
    """
    found: list[Finding] = []
    same = row_document == entry["invoice"]  # the common case, at C speed
    diffs = [] if same else document_diff(row_document, entry["invoice"])
    for name, value in (stored or {}).items():
        signed = entry["invoice"].get(name, _ABSENT)
        if value != signed and not any(path == name for path, _mine, _theirs in diffs):
            diffs.append((name, value, _show(signed)))
    kind = entry.get("kind")
    expected_origin = _KIND_ORIGIN.get(kind) if isinstance(kind, str) else None
    if expected_origin is not None and origin != expected_origin:
        diffs.append(("origin", origin, str(expected_origin)))
    if diffs:
        fields = "; ".join(f"{path}: {mine} / {theirs}" for path, mine, theirs in diffs)
        params = {"fields": fields, "diff": [{"field": p, "row": a, "entry": b} for p, a, b in diffs]}
        found.append(Finding(C.INVOICE_MISMATCH, log, index=index, number=number, params=params))
    if expected_state is not None and state != expected_state:
        params = {"state": state, "expected": str(expected_state)}
        found.append(Finding(C.INVOICE_STATE_MISMATCH, log, index=index, number=number, params=params))
    return found


def flag_runs(flags: bytes | bytearray, value: int) -> list[tuple[int, int]]:
    """Runs ``[a, b)`` where every ``flags[i] == value``, found at C speed."""
    pattern = re.compile(re.escape(bytes([value])) + b"+")
    return [match.span() for match in pattern.finditer(flags)]
