"""Named values of the recovery app that the core's case state machine does not need."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    """How a case or a file reached us."""

    ONLINE = "online"  # 在线提交
    EMAIL = "email"  # 邮件导入
    MAIL_IN = "mail_in"  # 纸质邮寄，客服代为登记
    PHONE = "phone"  # 电话，客服代为登记


class Remedy(StrEnum):
    RESTORE = "restore"  # 恢复原发票
    REISSUE = "reissue"  # 补开
    REPAIR = "repair"  # 修复：按账本条目改正与账本不一致的发票记录
    REPLAY = "replay"  # 从回执重放：恢复丢失的账本条目及其发票（fapiao ledger replay 的同一路径）


class CheckStatus(StrEnum):
    """The automatic check of a file that can be checked (a system receipt, an e-invoice file)."""

    NOT_CHECKED = "not_checked"  # 不适用
    VERIFIED = "verified"  # 已核验
    MISMATCH = "mismatch"  # 与申请不符
    FAILED = "failed"  # 核验失败
