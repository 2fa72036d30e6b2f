"""What ``fapiao ledger verify`` reports: finding codes, their messages, and a capped collection.

Findings carry an English message (a gettext msgid, marked with ``_``) and a Chinese one;
the Django layer translates the msgid when the catalogue has it.  Pure Python, no Django.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from fapiao.core.errors import _

__all__ = ["INFO_CODES", "MESSAGES", "TITLES", "Finding", "FindingCode", "Findings", "Severity", "title_zh"]


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
    NUMBER_OWNER = "number_owner"  # an outgoing number registered to another merchant, or to none
    REMEDY_MISMATCH = "remedy_mismatch"  # a restore / re-issue entry that is not its case's claim


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
    C.NUMBER_OWNER: (
        _("Outgoing invoice {number} is registered to merchant {other}: one number is under two merchants."),
        "销项发票号码 {number} 登记在商户 {other} 名下：同一号码出现在两个商户。",
    ),
    f"{C.NUMBER_OWNER}.unregistered": (
        _("Outgoing invoice {number} is missing from the register of outgoing numbers."),
        "销项发票 {number} 不在销项发票号码登记表中。",
    ),
    C.REMEDY_MISMATCH: (
        _("Entry {index} ({kind}) of case {case} differs from the case's claim (claim / entry): {fields}."),
        "第 {index} 条条目（{kind}）与补救申请 {case} 的申请内容不符（申请 / 条目）：{fields}。",
    ),
    f"{C.REMEDY_MISMATCH}.no_case": (
        _("Entry {index} ({kind}) names case {case}, which this merchant does not have."),
        "第 {index} 条条目（{kind}）所指的补救申请 {case} 不属于此商户。",
    ),
}


# The one name of each finding code, for people: the CLI, the verification and incidents pages and
# the merchant's mails all say these (English msgid, Chinese).  Codes stay in the JSON report.
TITLES: dict[str, tuple[str, str]] = {
    C.MISSING_ENTRY: (_("Ledger entry missing"), "账本条目缺失"),
    C.ALTERED_ENTRY: (_("Ledger entry altered"), "账本条目被改动"),
    C.OUT_OF_ORDER: (_("Ledger entries out of order"), "账本条目顺序错乱"),
    C.TRUNCATED: (_("Ledger truncated"), "账本被截断"),
    C.UNSIGNED_ENTRY: (_("Entries without a signed head"), "条目未被签名树头覆盖"),
    C.LOG_SIZE_MISMATCH: (_("Ledger size disagrees"), "账本条目数不符"),
    C.NODE_MISMATCH: (_("Merkle node wrong or missing"), "默克尔节点错误或缺失"),
    C.HEAD_ROOT_MISMATCH: (_("Signed head does not match the entries"), "签名树头与条目不符"),
    C.HEAD_UNVERIFIABLE: (_("Signed heads cannot be recomputed"), "签名树头无法重算"),
    C.BAD_SIGNATURE: (_("Invalid signature"), "签名无效"),
    C.UNKNOWN_KEY: (_("Signed with an unknown key"), "签名密钥未登记"),
    C.KEY_COMPROMISED: (_("Signed with a compromised key"), "签名密钥已泄露"),
    C.WITNESS_MISMATCH: (_("Witness file disagrees with the ledger"), "见证文件与账本不符"),
    C.WITNESS_LAG: (_("Witness file behind"), "见证文件滞后"),
    C.INVOICE_MISMATCH: (_("Invoice differs from the ledger"), "发票与账本不一致"),
    C.INVOICE_STATE_MISMATCH: (_("Invoice state differs from the ledger"), "发票状态与账本不一致"),
    C.INVOICE_WITHOUT_ENTRY: (_("Invoice without a ledger entry"), "发票在账本中没有记录"),
    C.ENTRY_WITHOUT_INVOICE: (_("In the ledger but the invoice is missing"), "账本有记录但发票缺失"),
    C.NUMBER_GAP: (_("Invoice numbers used but no invoice"), "号码已占用但没有发票"),
    C.NUMBER_UNALLOCATED: (_("Invoice number beyond its segment"), "发票号码超出号段"),
    C.NUMBER_OWNER: (_("Invoice number under another merchant"), "发票号码登记在其他商户名下"),
    C.REMEDY_MISMATCH: (_("Remedy differs from its case"), "补救结果与申请不符"),
}


def title_zh(code: str) -> str:
    """The Chinese name of a finding code (the code itself when it has none)."""
    return TITLES[code][1] if code in TITLES else code


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
