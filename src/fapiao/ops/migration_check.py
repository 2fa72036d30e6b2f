"""Compare the snapshots taken around a schema migration; any difference is an integrity incident.

A schema migration must not change what the merchants' records say: the invoices and their
totals, the lines per month × rate, the ledger and the audit log (their sizes and newest signed
heads).  :func:`compare` lists every measure that differs (:mod:`fapiao.ops.migration_measures`
takes them), :func:`report_changes` opens one integrity incident (``migration_changed_data``) per
merchant whose records changed, and :func:`describe` says in Chinese which merchant and what
changed, for the command's error.  The data is not put back here: the incident says which
migrations ran, and the runbook's answer is the backup taken before the upgrade.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fapiao.accounts.models import Merchant
from fapiao.core.choices import IncidentKind
from fapiao.ledger.incidents import open_incident
from fapiao.ops.migration_measures import STAFF, Figures

#: The most changes an incident's details and the command's message list per merchant.
MAX_LISTED = 20
MISSING = None  # a measure absent on one side: no rows before (or after) in that group


@dataclass(frozen=True)
class Change:
    owner: str  # a merchant's USCC, or ``staff``
    measure: str
    before: Any
    after: Any

    def as_dict(self) -> dict[str, Any]:
        return {"measure": self.measure, "before": self.before, "after": self.after}


def compare(before: Figures, after: Figures) -> list[Change]:
    """Every measure whose value differs, owner by owner, in a stable order."""
    changes = []
    for owner in sorted(set(before) | set(after)):
        was, now = before.get(owner, {}), after.get(owner, {})
        for measure in sorted(set(was) | set(now)):
            if was.get(measure, MISSING) != now.get(measure, MISSING):
                changes.append(Change(owner, measure, was.get(measure, MISSING), now.get(measure, MISSING)))
    return changes


def by_owner(changes: Sequence[Change]) -> dict[str, list[Change]]:
    grouped: dict[str, list[Change]] = {}
    for change in changes:
        grouped.setdefault(change.owner, []).append(change)
    return grouped


def report_changes(
    changes: Sequence[Change], *, migrations: Sequence[str], using: str = "default"
) -> list[int]:
    """Open (or find, if still unresolved) one incident per owner whose records changed; their ids."""
    merchants = {m.uscc: m for m in Merchant.objects.using(using).filter(uscc__in=list(by_owner(changes)))}
    opened = []
    for owner, own in by_owner(changes).items():
        listed = [change.as_dict() for change in own]
        digest = hashlib.sha256(json.dumps(listed, sort_keys=True, default=str).encode()).hexdigest()
        incident, _created = open_incident(
            kind=IncidentKind.MIGRATION_CHANGED_DATA,
            merchant=merchants.get(owner),
            identity={"owner": owner, "migrations": list(migrations), "changes": digest},
            details={
                "log": owner,  # the merchant's USCC (or ``staff``), as the other incident kinds name it
                "migrations": list(migrations),
                "changed": len(own),
                "changes": listed[:MAX_LISTED],
            },
        )
        opened.append(incident.pk)
    return opened


def describe(
    changes: Sequence[Change], *, names: dict[str, str], migrations: Sequence[str], opened: bool = True
) -> str:
    """The command's error: which migrations ran, then per merchant what changed (before → after)."""
    grouped = by_owner(changes)
    lines = [
        f"迁移改变了数据：{len(grouped)} 个商户的记录在迁移前后不一致"
        + ("，已为每个商户登记数据完整性事件。" if opened else "。"),
        f"本次执行的迁移：{'、'.join(migrations) or '（无）'}",
    ]
    for owner, own in grouped.items():
        who = "运营人员审计日志" if owner == STAFF else f"商户 {names.get(owner, owner)}（{owner}）"
        lines.append(f"{who}：{len(own)} 项不一致")
        lines.extend(
            f"  - {change.measure}：迁移前 {_shown(change.before)}，迁移后 {_shown(change.after)}"
            for change in own[:MAX_LISTED]
        )
        if len(own) > MAX_LISTED:
            lines.append(f"  - ……另有 {len(own) - MAX_LISTED} 项，见事件详情")
    lines.append(
        "请勿继续使用迁移后的数据：用升级前的备份恢复（docs/operations/emergency-plan.md），修正迁移后再升级。"
    )
    return "\n".join(lines)


def _shown(value: Any) -> str:
    return "（无）" if value is MISSING else str(value)
