"""Demo data: two merchants, their users, staff, number segments.  Idempotent.

Never in production (``FAPIAO_PRODUCTION=1``): the demo users share a public password.  Elsewhere the
demo touches only what it made itself (marked ``is_demo``): a user or a merchant that already has a
demo name or USCC but was not made by the demo is left alone — no password reset, no segments, no
demo users inside it — and reported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from fapiao.accounts.choices import Role
from fapiao.accounts.models import Merchant, NumberSegment, User
from fapiao.core.errors import PermissionDeniedError

SEGMENT_SIZE = 1_000_000
FIRST_SERIAL = 100_000_000_000_001

MERCHANTS = [
    # (USCC, name, segment block) — the first is the merchant of shared/receipt-example.json.
    ("91110108MA01ABCD84", "北京示例科技有限公司", 0),
    ("91110105MA01EFGH56", "北京另一家商贸有限公司", 1),
]
USERS = [
    ("clerk", Role.CLERK, "91110108MA01ABCD84", "王", "开票"),
    ("madmin", Role.MERCHANT_ADMIN, "91110108MA01ABCD84", "李", "管理"),
    ("clerk2", Role.CLERK, "91110105MA01EFGH56", "赵", "开票"),
    ("support", Role.SUPPORT, None, "陈", "客服"),
    ("reviewer", Role.REVIEWER, None, "刘", "审核"),
    ("reviewer2", Role.REVIEWER, None, "杨", "审核"),
    ("auditor", Role.AUDITOR, None, "周", "审计"),
    ("operator", Role.OPERATOR, None, "吴", "运维"),
]


CREATED = "created"
KEPT = "kept"  # made by an earlier run
LEFT_ALONE = "left alone"  # an account the demo did not make has this name
NOT_CREATED = "not created"  # its merchant was left alone


class DemoInProductionError(PermissionDeniedError):
    """Demo data is never loaded in production (FAPIAO_PRODUCTION=1): its users share a public password."""

    code = "demo_in_production"


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    merchant: str  # the merchant's name, or "—" for staff
    outcome: str


@dataclass(frozen=True)
class DemoSummary:
    password: str
    password_from_environment: bool
    users: list[DemoUser]
    merchants_left_alone: list[Merchant] = field(default_factory=list)
    segments_skipped: int = 0


def demo_password() -> tuple[str, bool]:
    value = os.environ.get("FAPIAO_DEMO_PASSWORD", "")
    return (value, True) if value else (settings.FAPIAO_DEMO_PASSWORD_DEFAULT, False)


def load_demo() -> DemoSummary:
    if settings.PRODUCTION:
        raise DemoInProductionError()
    password, from_env = demo_password()
    with transaction.atomic():
        merchants, left_alone = _demo_merchants()
        skipped = sum(_demo_segments(merchant, block) for merchant, block in merchants.values())
        homes = {uscc: merchant for uscc, (merchant, _block) in merchants.items()}
        users = [_demo_user(spec, homes, password) for spec in USERS]
    return DemoSummary(
        password=password,
        password_from_environment=from_env,
        users=users,
        merchants_left_alone=left_alone,
        segments_skipped=skipped,
    )


def _demo_merchants() -> tuple[dict[str, tuple[Merchant, int]], list[Merchant]]:
    """The demo's own merchants (made now or by an earlier run) and those it must leave alone."""
    ours: dict[str, tuple[Merchant, int]] = {}
    theirs: list[Merchant] = []
    for uscc, name, block in MERCHANTS:
        merchant, _created = Merchant.objects.get_or_create(
            uscc=uscc, defaults={"name": name, "is_demo": True}
        )
        if merchant.is_demo:
            ours[uscc] = (merchant, block)
        else:
            theirs.append(merchant)
    return ours, theirs


def _demo_segments(merchant: Merchant, block: int) -> int:
    """This year's and next year's segment of a demo merchant; returns how many were skipped because
    another merchant holds some of those serials."""
    this_year = timezone.localdate().year % 100
    first = FIRST_SERIAL + block * SEGMENT_SIZE
    last = first + SEGMENT_SIZE - 1
    skipped = 0
    for year in (this_year, this_year + 1):
        series = NumberSegment.objects.filter(year=year, province=settings.FAPIAO_PROVINCE_CODE, channel=0)
        if series.filter(merchant=merchant, first_serial=first).exists():
            continue
        if series.filter(first_serial__lte=last, last_serial__gte=first).exists():
            skipped += 1
            continue
        NumberSegment.objects.create(
            merchant=merchant,
            year=year,
            province=settings.FAPIAO_PROVINCE_CODE,
            channel=0,
            first_serial=first,
            last_serial=last,
            next_serial=first,
        )
    return skipped


def _demo_user(
    spec: tuple[str, Role, str | None, str, str],
    homes: dict[str, Merchant],
    password: str,
) -> DemoUser:
    username, role, home, last, first = spec
    merchant = homes.get(home) if home else None
    label = merchant.name if merchant else (home or "—")
    if home and merchant is None:
        return DemoUser(username, role.value, label, NOT_CREATED)
    existing = User.objects.filter(username__iexact=username).first()
    if existing is not None and not existing.is_demo:
        return DemoUser(username, role.value, label, LEFT_ALONE)
    if existing is not None:
        if not existing.check_password(password):  # FAPIAO_DEMO_PASSWORD changed since the last run
            existing.set_password(password)
            existing.save(update_fields=["password", "must_change_password"])
        return DemoUser(username, role.value, label, KEPT)
    user = User(
        username=username,
        role=role,
        merchant=merchant,
        last_name=last,
        first_name=first,
        is_staff=role == Role.OPERATOR,
        is_superuser=role == Role.OPERATOR,
        email=f"{username}@example.com",
        is_lead=username == "reviewer",  # assigns recovery cases
        is_demo=True,
    )
    user.set_password(password)
    user.save()
    return DemoUser(username, role.value, label, CREATED)
