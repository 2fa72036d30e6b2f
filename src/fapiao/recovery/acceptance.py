"""The 受理编号: BJ-YYYY-NNNNNN, sequential per Beijing-time year, assigned on first submission."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from fapiao.recovery.models import AcceptanceCounter

BEIJING = ZoneInfo("Asia/Shanghai")
PREFIX = "BJ"


def next_acceptance_no(now: datetime) -> str:
    """The next number of ``now``'s Beijing year; call inside the transaction that stores it.

    The year's counter row is locked until that transaction ends, so two submissions never get the
    same number, and a rolled-back submission gives its number back (no gaps from failures).
    """
    year = now.astimezone(BEIJING).year
    AcceptanceCounter.objects.get_or_create(year=year)
    counter = AcceptanceCounter.objects.select_for_update().get(year=year)
    counter.last += 1
    counter.save(update_fields=["last"])
    return f"{PREFIX}-{year}-{counter.last:06d}"
