"""System checks of the platform: the installation's files are private (``fapiao check``, ``migrate``)."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error

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
