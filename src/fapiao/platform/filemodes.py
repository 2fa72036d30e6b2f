"""What the server keeps on disk is private to its account: files 0600 in directories 0700 (issue 13).

The var dir (``FAPIAO_VAR_DIR``) holds the SQLite database and its WAL (live sessions), the keys,
the witness files, the evidence store, the backups, the mail spool; a world-readable
``fapiao.sqlite3`` let any local user replay a session.  Three things keep it private:

* :func:`private_umask`, called first thing by the settings (so by the servers, the ``fapiao``
  command and the tests): whatever this process creates gets no group or other bits — SQLite
  gives its WAL and shared-memory files the database file's mode;
* :func:`tighten`, called at start by ``fapiao.wsgi`` and ``fapiao.cli``: the private places and
  their direct children are set back to 0700/0600 when an older version or another tool left them
  open, if this account owns them; what it cannot fix is reported, and the start is refused;
* the system check ``fapiao.E001`` (``fapiao check``, ``migrate``) reports the same.

A directory that is 0700 hides everything below it, so deeper levels (the evidence store's
``sha256/ab/cd/`` tree) are not walked at every start.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PRIVATE_UMASK = 0o077
OPEN_BITS = 0o077  # any access for group or others
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def private_umask() -> None:
    """From now on this process creates files and directories for its own account only."""
    os.umask(os.umask(PRIVATE_UMASK) | PRIVATE_UMASK)  # a stricter umask already set is kept


@dataclass(frozen=True)
class Exposed:
    """A file or directory that others can reach and this account cannot close (it is not the owner)."""

    path: Path
    mode: int
    owner: int

    def __str__(self) -> str:
        return (
            f"{self.path} is open to other users (mode {self.mode:04o}) and belongs to uid {self.owner}, "
            f"not to this server's account (uid {os.geteuid()}): chown it to the server's account, "
            f"or chmod it {'700' if stat.S_ISDIR(self.mode) else '600'}"
        )


def private_places() -> list[Path]:
    """The var dir and everything configured to live elsewhere that holds secrets or party data."""
    places = [
        Path(settings.VAR_DIR),
        Path(settings.KEYS_DIR),
        Path(settings.FAPIAO_EVIDENCE_DIR),
        Path(settings.FAPIAO_WITNESS_FILE).parent,
        Path(settings.FAPIAO_BACKUP_DIR),
        Path(settings.MEDIA_ROOT),
    ]
    if getattr(settings, "EMAIL_FILE_PATH", None):
        places.append(Path(settings.EMAIL_FILE_PATH))
    if settings.FAPIAO_SIGNING_KEY_FILE:
        places.append(Path(settings.FAPIAO_SIGNING_KEY_FILE))
    access_log = os.environ.get("FAPIAO_ACCESS_LOG", "")
    if access_log and access_log != "-":
        places.append(Path(access_log))
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3" and not str(database["NAME"]).startswith(
        (":memory:", "file:")
    ):
        name = Path(database["NAME"])
        places += [name, *(name.with_name(name.name + suffix) for suffix in SQLITE_SIDE_FILES)]
    return places


def tighten(places: Iterable[Path] | None = None) -> list[Exposed]:
    """Close every place and its direct children to group and others where this account owns them;
    return what stays open."""
    exposed: list[Exposed] = []
    seen: set[Path] = set()
    for place in private_places() if places is None else places:
        for path in _with_children(place):
            if path in seen:
                continue
            seen.add(path)
            found = _close(path)
            if found is not None:
                exposed.append(found)
    return exposed


def open_places(places: Iterable[Path] | None = None) -> list[Path]:
    """The places (and direct children) that group or others can reach, changing nothing."""
    found = []
    for place in private_places() if places is None else places:
        for path in _with_children(place):
            info = _lstat(path)
            if info is not None and not stat.S_ISLNK(info.st_mode) and info.st_mode & OPEN_BITS:
                found.append(path)
    return sorted(set(found))


def require_private(places: Iterable[Path] | None = None) -> None:
    """:func:`tighten`, refusing to go on when something stays open."""
    exposed = tighten(places)
    if exposed:
        raise ImproperlyConfigured(
            "Refusing to start: files of this installation are readable by other users.\n"
            + "\n".join(f"  {item}" for item in exposed)
        )


def _with_children(place: Path) -> list[Path]:
    info = _lstat(place)
    if info is None or stat.S_ISLNK(info.st_mode):
        return []
    if not stat.S_ISDIR(info.st_mode):
        return [place]
    try:
        return [place, *sorted(place.iterdir())]
    except PermissionError:
        return [place]


def _close(path: Path) -> Exposed | None:
    info = _lstat(path)
    if info is None or stat.S_ISLNK(info.st_mode) or not info.st_mode & OPEN_BITS:
        return None
    if info.st_uid != os.geteuid():
        return Exposed(path, info.st_mode, info.st_uid)
    os.chmod(path, stat.S_IMODE(info.st_mode) & ~OPEN_BITS)
    return None


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return None
