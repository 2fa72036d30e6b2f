"""System checks of the platform: the installation's files are private, and a production server knows its
public address (``fapiao check``, ``migrate``; the public address is also logged at every start)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from fapiao.platform.filemodes import open_places


def private_files(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """fapiao.E001 for each file or directory of the installation that group or others can reach."""
    return [
        Error(
            f"{path} can be read by other users of this machine.",
            hint="The server and the fapiao command close it at start when they own it (0600 files, "
            "0700 directories); otherwise chown it to the server's account or chmod it yourself.",
            obj=str(path),
            id="fapiao.E001",
        )
        for path in open_places()
    ]


PUBLIC_URL_UNSET = (
    "FAPIAO_PUBLIC_URL is not set: links in mails, invoice PDFs and receipts point at {url}, "
    "which merchants cannot reach."
)


def public_url_unset() -> bool:
    """A production server whose mails would link to the development default."""
    return bool(settings.PRODUCTION) and not settings.PUBLIC_URL_GIVEN


def public_url(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """fapiao.W002 when a production server has no FAPIAO_PUBLIC_URL."""
    if not public_url_unset():
        return []
    return [
        Warning(
            PUBLIC_URL_UNSET.format(url=settings.FAPIAO_PUBLIC_URL),
            hint="Set FAPIAO_PUBLIC_URL to the address merchants use, e.g. https://fapiao.example.cn.",
            id="fapiao.W002",
        )
    ]
