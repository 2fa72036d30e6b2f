"""The roles (docs/architecture.md, "Who may do what")."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    CLERK = "clerk"  # 商户开票员
    MERCHANT_ADMIN = "merchant_admin"  # 商户管理员
    SUPPORT = "support"  # 客服
    REVIEWER = "reviewer"  # 审核员
    AUDITOR = "auditor"  # 审计员
    OPERATOR = "operator"  # 系统管理员


MERCHANT_ROLES = frozenset({Role.CLERK, Role.MERCHANT_ADMIN})
STAFF_ROLES = frozenset({Role.SUPPORT, Role.REVIEWER, Role.AUDITOR, Role.OPERATOR})
