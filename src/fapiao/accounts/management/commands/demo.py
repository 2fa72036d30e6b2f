from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from fapiao.accounts.demo import load_demo


class Command(BaseCommand):
    help = "Load the demo merchants, users and number segments (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        summary = load_demo()
        self.stdout.write("演示环境 / demo users:")
        for username, role, merchant in summary.users:
            self.stdout.write(f"  {username:<10} {role:<15} {merchant}")
        source = (
            "FAPIAO_DEMO_PASSWORD"
            if summary.password_from_environment
            else "default; set FAPIAO_DEMO_PASSWORD"
        )
        self.stdout.write(f"  password: {summary.password}  ({source})")
