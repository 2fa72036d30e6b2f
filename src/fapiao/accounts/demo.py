"""Demo data: two merchants, their users, staff, number segments.  Idempotent."""

from __future__ import annotations

import os
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from fapiao.accounts.choices import Role
from fapiao.accounts.models import Merchant, NumberSegment, User

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


@dataclass(frozen=True)
class DemoSummary:
    password: str
    password_from_environment: bool
    users: list[tuple[str, str, str]]


def demo_password() -> tuple[str, bool]:
    value = os.environ.get("FAPIAO_DEMO_PASSWORD", "")
    return (value, True) if value else (settings.FAPIAO_DEMO_PASSWORD_DEFAULT, False)


def load_demo() -> DemoSummary:
    password, from_env = demo_password()
    this_year = timezone.localdate().year % 100
    with transaction.atomic():
        merchants = {}
        for uscc, name, block in MERCHANTS:
            merchant, _ = Merchant.objects.get_or_create(uscc=uscc, defaults={"name": name})
            merchants[uscc] = merchant
            for year in (this_year, this_year + 1):
                start = FIRST_SERIAL + block * SEGMENT_SIZE
                NumberSegment.objects.get_or_create(
                    merchant=merchant,
                    year=year,
                    province=settings.FAPIAO_PROVINCE_CODE,
                    channel=0,
                    first_serial=start,
                    defaults={"last_serial": start + SEGMENT_SIZE - 1, "next_serial": start},
                )
        listed = []
        for username, role, home, last, first in USERS:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "role": role,
                    "merchant": merchants[home] if home else None,
                    "last_name": last,
                    "first_name": first,
                    "is_staff": role == Role.OPERATOR,
                    "is_superuser": role == Role.OPERATOR,
                    "email": f"{username}@example.com",
                    "is_lead": username == "reviewer",  # assigns recovery cases
                },
            )
            if created or not user.check_password(password):
                user.set_password(password)
                user.save(update_fields=["password"])
            if not user.email:  # demo users from before notifications existed
                user.email = f"{username}@example.com"
                user.is_lead = username == "reviewer"
                user.save(update_fields=["email", "is_lead"])
            listed.append((username, role.value, merchants[home].name if home else "—"))
    return DemoSummary(password=password, password_from_environment=from_env, users=listed)
