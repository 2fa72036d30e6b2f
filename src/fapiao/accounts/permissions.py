"""What each role may do: one table, read by services, selectors, the API and the UI.

Everything asks ``may(user, action)`` or ``require(user, action)`` rather than checking roles
inline.  The table says *which roles* may act; *on which merchant's data* is the selectors' job
(merchant users see their own merchant only, and another merchant's objects answer 404).
``tests/integration/test_authorization_matrix.py`` checks every route against this table.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from fapiao.accounts.choices import Role
from fapiao.core.errors import PermissionDeniedError, _

if TYPE_CHECKING:
    from fapiao.accounts.models import User


class Action(StrEnum):
    ISSUE_INVOICE = "issue_invoice"
    RED_LETTER_INVOICE = "red_letter_invoice"
    DELIVER_INVOICES = "deliver_invoices"
    READ_INVOICES = "read_invoices"
    IMPORT_INVOICES = "import_invoices"
    EXPORT_INVOICES = "export_invoices"
    READ_LEDGER = "read_ledger"
    VERIFY_LEDGER = "verify_ledger"
    MANAGE_KEYS = "manage_keys"
    HANDLE_INCIDENTS = "handle_incidents"
    READ_OPERATIONS = "read_operations"
    REVEAL_SENSITIVE = "reveal_sensitive"
    READ_AUDIT = "read_audit"
    EXPORT_AUDIT = "export_audit"
    VERIFY_AUDIT = "verify_audit"
    READ_USERS = "read_users"
    MANAGE_MERCHANT_USERS = "manage_merchant_users"
    READ_MERCHANTS = "read_merchants"
    MANAGE_MERCHANTS = "manage_merchants"
    MANAGE_STAFF = "manage_staff"
    UNLOCK_USERS = "unlock_users"
    MANAGE_OWN_TOKENS = "manage_own_tokens"
    OPEN_CASES = "open_cases"
    REGISTER_CASES = "register_cases"
    READ_CASES = "read_cases"
    MESSAGE_CASES = "message_cases"
    ADD_EVIDENCE = "add_evidence"
    REVIEW_CASES = "review_cases"
    ASSIGN_CASES = "assign_cases"


ALLOWED: dict[Action, frozenset[Role]] = {
    Action.ISSUE_INVOICE: frozenset({Role.CLERK, Role.MERCHANT_ADMIN}),
    Action.RED_LETTER_INVOICE: frozenset({Role.CLERK, Role.MERCHANT_ADMIN}),
    # E-mailing an invoice to its buyer (the PDF carries the buyer's own data).
    Action.DELIVER_INVOICES: frozenset({Role.CLERK, Role.MERCHANT_ADMIN}),
    Action.READ_INVOICES: frozenset(Role),
    # Importing another system's invoices (fapiao import, 导入发票): the merchant's admins only.
    Action.IMPORT_INVOICES: frozenset({Role.MERCHANT_ADMIN}),
    Action.EXPORT_INVOICES: frozenset({Role.CLERK, Role.MERCHANT_ADMIN, Role.AUDITOR}),
    Action.READ_LEDGER: frozenset(Role),
    Action.VERIFY_LEDGER: frozenset({Role.AUDITOR, Role.OPERATOR}),
    Action.MANAGE_KEYS: frozenset({Role.OPERATOR}),
    Action.HANDLE_INCIDENTS: frozenset({Role.OPERATOR}),
    # The operators' overview (运维概览) and the backups and drills page: installation-wide figures.
    Action.READ_OPERATIONS: frozenset({Role.OPERATOR}),
    Action.REVEAL_SENSITIVE: frozenset({Role.CLERK, Role.MERCHANT_ADMIN}),
    Action.READ_AUDIT: frozenset({Role.AUDITOR}),
    Action.EXPORT_AUDIT: frozenset({Role.AUDITOR}),
    Action.VERIFY_AUDIT: frozenset({Role.AUDITOR, Role.OPERATOR}),
    # Merchant admins see their own merchant's users; auditors and operators see everyone.
    Action.READ_USERS: frozenset({Role.MERCHANT_ADMIN, Role.AUDITOR, Role.OPERATOR}),
    Action.MANAGE_MERCHANT_USERS: frozenset({Role.MERCHANT_ADMIN}),
    Action.READ_MERCHANTS: frozenset({Role.SUPPORT, Role.REVIEWER, Role.AUDITOR, Role.OPERATOR}),
    # Merchants, their number segments and their administrators (clerks are the admins' job).
    Action.MANAGE_MERCHANTS: frozenset({Role.OPERATOR}),
    Action.MANAGE_STAFF: frozenset({Role.OPERATOR}),
    Action.UNLOCK_USERS: frozenset({Role.OPERATOR}),
    Action.MANAGE_OWN_TOKENS: frozenset(Role),
    # Recovery cases (docs/spec/recovery.md).  What a role may do to a case in a given state is the
    # core's state machine (fapiao.core.cases); these say who may touch cases at all.
    Action.OPEN_CASES: frozenset({Role.CLERK, Role.MERCHANT_ADMIN}),
    # 代商户登记: support opens and submits a case for a merchant who phoned in or wrote.
    Action.REGISTER_CASES: frozenset({Role.SUPPORT}),
    Action.READ_CASES: frozenset(
        {Role.CLERK, Role.MERCHANT_ADMIN, Role.SUPPORT, Role.REVIEWER, Role.AUDITOR}
    ),
    Action.MESSAGE_CASES: frozenset({Role.CLERK, Role.MERCHANT_ADMIN, Role.SUPPORT, Role.REVIEWER}),
    # Support registers e-mailed and mailed-in evidence on the merchant's behalf.
    Action.ADD_EVIDENCE: frozenset({Role.CLERK, Role.MERCHANT_ADMIN, Role.SUPPORT}),
    Action.REVIEW_CASES: frozenset({Role.REVIEWER}),
    # Assigning a case to a reviewer: a lead reviewer (User.is_lead) only; checked in the service.
    Action.ASSIGN_CASES: frozenset({Role.REVIEWER}),
}


class RoleForbiddenError(PermissionDeniedError):
    """Your role does not allow this action."""

    code = "role_forbidden"


def may(user: User, action: Action) -> bool:
    return bool(user.is_active and user.role in ALLOWED[action])


def require(user: User, action: Action) -> None:
    if not may(user, action):
        raise RoleForbiddenError(_("Your role does not allow this action."))
