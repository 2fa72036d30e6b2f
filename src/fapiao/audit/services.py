"""The audit trail (issue 4).  Being built now: the signature below is the contract callers use.

``record(...)`` writes one append-only, chained audit record in the caller's transaction.
"""

from __future__ import annotations

from typing import Any


def record(
    *,
    actor: Any,
    action: str,
    target: Any = None,
    target_type: str = "",
    target_id: str = "",
    merchant: Any = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    note: str = "",
) -> None:
    """Record that ``actor`` did ``action`` to ``target`` (before/after snapshots, sensitive fields masked).

    ``actor`` is a User or None (anonymous, e.g. a failed login); ``merchant`` selects the merchant's
    audit log (None: the staff log).  Request id and client address come from the request context.
    """
    return None
