"""Custody of the ledger's Ed25519 signing keys: files under ``var/keys``, never the database.

``keys.json`` is the public registry (every key ever used, with its status); each private
key is ``<key_id>.pem`` with mode 0600.  ``FAPIAO_SIGNING_KEY_FILE`` points at a private key
kept elsewhere (a mounted secret); it is added to the registry on first use.
"""

from __future__ import annotations

import fcntl
import os
import threading
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from fapiao.core.canonical import utc_stamp
from fapiao.core.signing import KeyRegistry, SigningKey, read_private_key, write_private_key

_lock = threading.Lock()
_cache: dict[str, tuple[tuple[int, int, int], KeyRegistry]] = {}


def keys_dir() -> Path:
    return Path(settings.KEYS_DIR)


def registry_path() -> Path:
    return keys_dir() / "keys.json"


def _private_path(key_id: str) -> Path:
    return keys_dir() / f"{key_id}.pem"


class _DirLock:
    """An exclusive lock across processes, so two workers never both create a first key."""

    def __enter__(self) -> None:
        keys_dir().mkdir(parents=True, exist_ok=True, mode=0o700)
        self.fd = os.open(keys_dir() / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def registry() -> KeyRegistry:
    """The public-key registry, reloaded when the file changes (rotation by the CLI)."""
    path = registry_path()
    with _lock:
        try:
            stat = path.stat()
        except FileNotFoundError:
            return KeyRegistry()
        # Every save replaces the file (a new inode), so this changes even when mtimes are coarse.
        version = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        cached = _cache.get(str(path))
        if cached and cached[0] == version:
            return cached[1]
        loaded = KeyRegistry.load(path)
        _cache[str(path)] = (version, loaded)
        return loaded


def _add_key(reg: KeyRegistry, key: SigningKey, now: datetime) -> None:
    for other in reg.active():
        reg.retire(other.key_id)
    reg.add(key.public_raw, created_at=utc_stamp(now))
    reg.save(registry_path())


def signing_key() -> SigningKey:
    """The current signing key, generated on first start."""
    configured = getattr(settings, "FAPIAO_SIGNING_KEY_FILE", None)
    if configured:
        key = read_private_key(Path(configured))
        if registry().get(key.key_id) is None:
            with _DirLock():
                reg = KeyRegistry.load(registry_path()) if registry_path().exists() else KeyRegistry()
                if reg.get(key.key_id) is None:
                    _add_key(reg, key, timezone.now())
        return key
    active = registry().active()
    if active:
        return _load_private(active[-1].key_id)
    with _DirLock():
        reg = KeyRegistry.load(registry_path()) if registry_path().exists() else KeyRegistry()
        if reg.active():
            return _load_private(reg.active()[-1].key_id)
        key = SigningKey.generate()
        write_private_key(_private_path(key.key_id), key)
        _add_key(reg, key, timezone.now())
        return key


_private_cache: dict[str, SigningKey] = {}


def _load_private(key_id: str) -> SigningKey:
    key = _private_cache.get(key_id)
    if key is None:
        key = read_private_key(_private_path(key_id))
        _private_cache[key_id] = key
    return key


def rotate() -> SigningKey:
    """Add a new key and make it current; old public keys stay for verification."""
    with _DirLock():
        reg = KeyRegistry.load(registry_path()) if registry_path().exists() else KeyRegistry()
        key = SigningKey.generate()
        write_private_key(_private_path(key.key_id), key)
        _add_key(reg, key, timezone.now())
    return key


def mark_compromised(key_id: str, since: datetime) -> None:
    with _DirLock():
        reg = KeyRegistry.load(registry_path())
        reg.mark_compromised(key_id, utc_stamp(since))
        reg.save(registry_path())
