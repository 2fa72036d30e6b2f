"""Whether a server is running on this var dir: every server process holds a shared lock on
``$FAPIAO_VAR_DIR/server.lock`` for its whole life (the kernel drops it when the process dies,
SIGKILL included), and what must not run beside a server (``backup restore``) asks for it
exclusively."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

from fapiao.core.errors import ConflictError

_held: list[int] = []


class ServerRunningError(ConflictError):
    """A Fapiao Vault server is running on {var_dir}: stop every server process first (they hold {lock})."""

    code = "server_running"


def lock_path() -> Path:
    return Path(settings.VAR_DIR) / "server.lock"


def mark_running() -> None:
    """Called once per server process (``fapiao.wsgi``): hold the shared lock until exit."""
    if _held:
        return
    path = lock_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)
    _held.append(fd)


@contextlib.contextmanager
def no_server() -> Iterator[None]:
    """Hold the lock exclusively (no server can start meanwhile), or refuse while one runs."""
    path = lock_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ServerRunningError(var_dir=settings.VAR_DIR, lock=path) from None
        yield
    finally:
        os.close(fd)
