from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from fapiao.web.msgids import TARGET, render


class Command(BaseCommand):
    help = (
        "Regenerate fapiao/web/error_messages.py from the error classes' default messages (for makemessages)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        TARGET.write_text(render(), encoding="utf-8")
        self.stdout.write(f"wrote {TARGET}")
