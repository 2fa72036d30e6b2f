"""The audit trail as seen from below it.

Apps under ``audit`` in the layers (``accounts``) record what they do through :func:`record`; the
audit app registers the real recorder from ``AuditConfig.ready``, so nothing here imports it.  The
arguments are those of :func:`fapiao.audit.services.record`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_recorder: list[Callable[..., Any]] = []


def register_recorder(recorder: Callable[..., Any]) -> None:
    _recorder[:] = [recorder]


def record(**fields: Any) -> Any:
    """Record an action in the audit trail, in the caller's transaction."""
    if not _recorder:
        raise RuntimeError("the audit app is not installed: nothing can be recorded")
    return _recorder[0](**fields)
