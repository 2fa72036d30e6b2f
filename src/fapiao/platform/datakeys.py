"""Custody of the data keys that encrypt sensitive party data: a key file or the environment, never
the database (docs/spec/security.md).

The key document (``fapiao-data-keys/1``)::

    {"format": "fapiao-data-keys/1", "current": 2,
     "keys": [{"version": 1, "key": "<base64, 32 bytes>", "created_at": "…"}, …],
     "index_key": "<base64, 32 bytes>"}

comes from ``FAPIAO_DATA_KEYS`` (the document itself, for a mounted secret) or else from
``$FAPIAO_KEYS_DIR/data-keys.json`` (mode 0600), generated on first use.  The file is re-read when
it changes (checked at most once a second), so ``fapiao keys rotate-data`` reaches running
servers within a second.  Every version ever used stays in the document: rows and backups
encrypted with it need it.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import json
import os
import secrets
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from fapiao.core.canonical import utc_stamp
from fapiao.core.errors import FapiaoError
from fapiao.core.fieldcrypt import KEY_BYTES, FieldContext, Keyring
from fapiao.platform.context import mark_personal_data

FORMAT = "fapiao-data-keys/1"
FILE_NAME = "data-keys.json"
ENV_NAME = "FAPIAO_DATA_KEYS"

RECHECK_SECONDS = 1.0  # a rotation reaches running servers within this long
_lock = threading.Lock()
_cache: dict[str, tuple[Any, Keyring]] = {}
_checked: dict[str, float] = {}  # key file -> when its stat was last compared


class DataKeyError(FapiaoError):
    """The data keys cannot be read; see the runbook, "Data keys: backup and rotation"."""

    status = 500
    code = "data_keys_unreadable"


def key_file() -> Path:
    return Path(settings.KEYS_DIR) / FILE_NAME


def from_environment() -> bool:
    return bool(getattr(settings, "FAPIAO_DATA_KEYS", None))


def _decode(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise DataKeyError("The data key document's {what} is not base64.", what=what)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise DataKeyError("The data key document's {what} is not base64.", what=what) from None
    if len(raw) != KEY_BYTES:
        raise DataKeyError("The data key document's {what} is not 32 bytes.", what=what)
    return raw


def parse(document: Any) -> Keyring:
    """A keyring from a ``fapiao-data-keys/1`` document (DataKeyError when malformed)."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise DataKeyError("This is not a fapiao-data-keys/1 document.")
    items = document.get("keys")
    if not isinstance(items, list) or not items:
        raise DataKeyError("The data key document lists no keys.")
    keys: dict[int, bytes] = {}
    for item in items:
        version = item.get("version") if isinstance(item, dict) else None
        if not isinstance(version, int) or isinstance(version, bool) or not 0 < version < 2**32:
            raise DataKeyError("A data key needs a whole-number version from 1.")
        keys[version] = _decode(item.get("key"), f"key {version}")
    current = document.get("current")
    if current not in keys:
        raise DataKeyError("The data key document's current version is not among its keys.")
    return _Keyring(keys, current=current, index_key=_decode(document.get("index_key"), "index_key"))


class _Keyring(Keyring):
    """Every decryption marks the request as showing personal data, so its answer is not cached."""

    def decrypt(self, blob: bytes | memoryview, context: FieldContext) -> bytes:
        mark_personal_data()
        return super().decrypt(blob, context)


def _new_key_entry(version: int) -> dict[str, Any]:
    return {
        "version": version,
        "key": base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode(),
        "created_at": utc_stamp(timezone.now()),
    }


def new_document() -> dict[str, Any]:
    return {
        "format": FORMAT,
        "current": 1,
        "keys": [_new_key_entry(1)],
        "index_key": base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode(),
    }


class _FileLock:
    """Across processes, so two workers never both generate a first key file."""

    def __enter__(self) -> None:
        directory = Path(settings.KEYS_DIR)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.fd = os.open(directory / ".data-keys.lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _read_file(path: Path) -> dict[str, Any]:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise DataKeyError(
            "The data key file {path} is accessible by group or others (mode {mode}); run chmod 600 on it.",
            path=str(path),
            mode=oct(stat.S_IMODE(mode)),
        )
    try:
        document = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeError, ValueError) as error:
        raise DataKeyError(
            "Cannot read the data key file {path}: {reason}", path=str(path), reason=str(error)
        ) from None
    if not isinstance(document, dict):
        raise DataKeyError("This is not a fapiao-data-keys/1 document.")
    return document


def _write_file(path: Path, document: dict[str, Any]) -> None:
    """Atomically: a 0600 temporary file beside it, fsynced, renamed over it."""
    data = (json.dumps(document, indent=2) + "\n").encode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def document() -> dict[str, Any]:
    """The key document as stored (secrets included): for rotation and backups only."""
    if from_environment():
        try:
            loaded = json.loads(settings.FAPIAO_DATA_KEYS or "")
        except ValueError:
            raise DataKeyError("FAPIAO_DATA_KEYS is not a JSON document.") from None
        parse(loaded)
        return dict(loaded)
    path = key_file()
    with _FileLock():
        if not path.exists():
            _write_file(path, new_document())
        return _read_file(path)


def keyring() -> Keyring:
    """The current keyring; generated into the key file on first use."""
    if from_environment():
        text = settings.FAPIAO_DATA_KEYS
        with _lock:
            cached = _cache.get(ENV_NAME)
            if cached and cached[0] == text:
                return cached[1]
        ring = parse(document())
        with _lock:
            _cache[ENV_NAME] = (text, ring)
        return ring
    path = key_file()
    now = time.monotonic()
    with _lock:
        checked = _checked.get(str(path))
        cached = _cache.get(str(path))
        if cached and checked is not None and now - checked < RECHECK_SECONDS:
            return cached[1]
    try:
        info = path.stat()
    except FileNotFoundError:
        document()  # creates it under the lock
        info = path.stat()
    version = (info.st_ino, info.st_mtime_ns, info.st_size)
    with _lock:
        cached = _cache.get(str(path))
        if cached and cached[0] == version:
            _checked[str(path)] = now
            return cached[1]
    ring = parse(_read_file(path))
    with _lock:
        _cache[str(path)] = (version, ring)
        _checked[str(path)] = now
    return ring


def forget_cached() -> None:
    """Re-read the key file on the next use (after this process changed it, or in tests)."""
    with _lock:
        _checked.clear()


def add_version() -> int:
    """Add a new data key and make it current (key file only); returns its version."""
    if from_environment():
        raise DataKeyError(
            "The data keys come from FAPIAO_DATA_KEYS. Add a key with a higher version to that document, "
            "make it current, restart the servers, then run `fapiao keys rotate-data` again."
        )
    path = key_file()
    with _FileLock():
        if not path.exists():
            _write_file(path, new_document())
        current = _read_file(path)
        parse(current)
        version = max(int(item["version"]) for item in current["keys"]) + 1
        current["keys"].append(_new_key_entry(version))
        current["current"] = version
        _write_file(path, current)
    forget_cached()
    return version


# --- Re-encryption after a rotation ---------------------------------------------------------------


@dataclass(frozen=True)
class Rotation:
    """How one table's encrypted rows are re-encrypted by ``fapiao keys rotate-data``.

    ``remaining(version)`` counts rows not yet under ``version``; ``rotate(batch_size, progress)``
    re-encrypts them under the current key in resumable batches and returns how many it did;
    ``progress(done, remaining)`` is called after each batch.
    """

    name: str
    remaining: Callable[[int], int]
    rotate: Callable[[int, Callable[[int, int], None]], int]


ROTATIONS: dict[str, Rotation] = {}


def register_rotation(rotation: Rotation) -> None:
    """Called from an app's ``AppConfig.ready`` for each table holding data-key ciphertexts."""
    ROTATIONS[rotation.name] = rotation


def pending_rows(model: Any, version: int) -> int:
    """Rows of ``model`` holding ciphertexts not yet under data key ``version``."""
    return int(model.objects.filter(data_key_version__isnull=False).exclude(data_key_version=version).count())


def rotate_rows(
    model: Any,
    columns: Sequence[str],
    reencrypt: Callable[[Any, Keyring], None],
    *,
    batch_size: int,
    progress: Callable[[int, int], None] | None = None,
    only: Sequence[str] = (),
) -> int:
    """Re-encrypt ``model``'s rows not yet under the current data key, ``batch_size`` per transaction.

    ``reencrypt(row, ring)`` rewrites a row's ciphertexts (and its ``data_key_version``); ``columns``
    are the ones it changes; ``only`` limits what is loaded.  Resumable and idempotent: each batch
    commits on its own and a row under the current key is never touched again, so an interrupted
    run is finished by running it again.  Returns how many rows were re-encrypted.
    """
    ring = keyring()
    pending = model.objects.filter(data_key_version__isnull=False).exclude(data_key_version=ring.current)
    if only:
        pending = pending.only("pk", "data_key_version", *only)
    remaining = pending.count()
    done, last_pk = 0, 0
    while True:
        with transaction.atomic():
            batch = list(pending.filter(pk__gt=last_pk).order_by("pk")[:batch_size])
            if not batch:
                break
            for row in batch:
                reencrypt(row, ring)
            model.objects.bulk_update(batch, [*columns, "data_key_version"])
        last_pk = batch[-1].pk
        done += len(batch)
        remaining = max(remaining - len(batch), 0)
        if progress is not None:
            progress(done, remaining)
    return done
