"""Audit trail exports (CSV/XLSX): one row per record, spreadsheet formula prefixes escaped, audited."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

from django.db.models import QuerySet

from fapiao.accounts.models import User
from fapiao.accounts.permissions import Action, require
from fapiao.audit.models import AuditRecord
from fapiao.audit.selectors import AuditFilters, audit_records
from fapiao.audit.services import record
from fapiao.formats.tabular import write_table

BEIJING = ZoneInfo("Asia/Shanghai")
HEADER = [
    "日志 log",
    "序号 index",
    "时间（北京）at",
    "用户名 username",
    "姓名 name",
    "角色 role",
    "操作 action",
    "对象类型 target_type",
    "对象编号 target_id",
    "对象 target",
    "请求编号 request_id",
    "客户端地址 client_address",
    "修改前 before",
    "修改后 after",
    "备注 note",
]


def _json(value: object) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def rows(queryset: QuerySet[AuditRecord]) -> Iterator[list[object]]:
    for row in queryset.iterator(chunk_size=2000):
        yield [
            row.log.name,
            row.seq,
            row.at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S.%f"),
            row.actor_username,
            row.actor_name,
            row.actor_role,
            row.action,
            row.target_type,
            row.target_id,
            row.target_repr,
            row.request_id,
            row.client_address,
            _json(row.before),
            _json(row.after),
            row.note,
        ]


def export_audit(*, user: User, filters: AuditFilters, path: Path) -> int:
    """Write the records ``user`` may read that match ``filters`` to ``path`` (.csv or .xlsx).

    The export itself is recorded, after the file is written.
    """
    require(user, Action.EXPORT_AUDIT)
    queryset = audit_records(user=user, filters=filters)
    count = write_table(path, HEADER, rows(queryset), title="审计记录 audit")
    record(
        actor=user,
        action="audit.export",
        target_type="export",
        target_id=path.suffix.lower().lstrip("."),
        after={"rows": count, "file": path.name, "filters": filters.as_params()},
    )
    return count
