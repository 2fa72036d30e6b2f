"""Evidence on a recovery case (docs/spec/recovery.md): its types and the errors an upload can meet.

The type is what the merchant *says* a file is; ``fapiao.formats.sniff`` decides what the
bytes *are*, and the two must agree.  Limits are given in bytes and reported in MB (2**20
bytes, like the batch upload), so ``FAPIAO_EVIDENCE_MAX_FILE_MB`` reads the same on screen.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from fapiao.core.errors import InvalidValueError

MIB: Final = 2**20


class EvidenceType(StrEnum):
    CONTRACT = "contract"  # 合同
    BANK_STATEMENT = "bank_statement"  # 银行流水
    STUB_COPY = "stub_copy"  # 存根联/记账联复印件
    E_INVOICE = "e_invoice"  # 电子发票文件（XML、OFD、PDF）
    SYSTEM_RECEIPT = "system_receipt"  # 系统回执（本系统签发的 JSON 回执）
    EMAIL = "email"  # 电子邮件（.eml）
    OTHER = "other"  # 其他


class EvidenceEmptyError(InvalidValueError):
    """The file is empty."""

    code = "evidence_empty"


class EvidenceTooLargeError(InvalidValueError):
    """The file is larger than {limit_mb} MB."""

    code = "evidence_too_large"


class EvidenceTypeUnknownError(InvalidValueError):
    """Choose one of the listed evidence types."""

    code = "evidence_type_unknown"


class EvidenceTypeMismatchError(InvalidValueError):
    """The file's content is {found}, which is not accepted as {declared}."""

    code = "evidence_type_mismatch"


class EvidenceAttachmentUnsafeError(InvalidValueError):
    """The attachment {attachment} is an unsafe archive (a zip bomb or damaged); the e-mail was not saved."""

    code = "evidence_attachment_unsafe"


def megabytes(limit_bytes: int) -> int | float:
    """A byte limit as the MB figure people configured: ``20 * MIB -> 20``, ``MIB // 2 -> 0.5``."""
    whole, rest = divmod(limit_bytes, MIB)
    return whole if rest == 0 else round(limit_bytes / MIB, 1)
