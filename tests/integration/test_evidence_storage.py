"""Content-addressed evidence storage: stored once, private, atomic, tamper-evident, never deleted."""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from fapiao.recovery import storage as storage_module
from fapiao.recovery.storage import (
    EvidenceMissingError,
    EvidenceTamperedError,
    evidence_storage,
    open_blob,
    store_blob,
)

DATA = "合同扫描件 %PDF-1.7 …".encode()
DIGEST = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def root(settings: Any, tmp_path: Path) -> Path:
    settings.FAPIAO_EVIDENCE_DIR = tmp_path / "evidence"
    return tmp_path / "evidence"


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def test_store_returns_the_sha256_and_files_it_by_fingerprint(root: Path) -> None:
    assert store_blob(DATA) == DIGEST
    path = root / "sha256" / DIGEST[:2] / DIGEST[2:4] / DIGEST
    assert files_under(root) == [path]
    assert path.read_bytes() == DATA
    assert open_blob(DIGEST) == DATA


def test_files_and_directories_are_private(root: Path) -> None:
    store_blob(DATA)
    path = root / "sha256" / DIGEST[:2] / DIGEST[2:4] / DIGEST
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for directory in (path.parent, path.parent.parent, root / "sha256"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory


def test_the_same_bytes_are_stored_once(root: Path) -> None:
    store_blob(DATA)
    path = root / "sha256" / DIGEST[:2] / DIGEST[2:4] / DIGEST
    before = path.stat()
    assert store_blob(DATA) == DIGEST
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert store_blob(DATA + b"!") != DIGEST
    assert len(files_under(root)) == 2


def test_a_changed_file_is_refused_on_read_and_not_overwritten_on_store(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store_blob(DATA)
    path = root / "sha256" / DIGEST[:2] / DIGEST[2:4] / DIGEST
    path.write_bytes(DATA.replace(b"1.7", b"1.6"))
    with pytest.raises(EvidenceTamperedError) as caught:
        open_blob(DIGEST)
    assert caught.value.status == 500
    assert caught.value.code == "evidence_tampered"
    assert "no longer matches" in caplog.text
    with pytest.raises(EvidenceTamperedError):
        store_blob(DATA)
    assert path.read_bytes() == DATA.replace(b"1.7", b"1.6")  # left for the operator to see


@pytest.mark.parametrize(
    "name",
    [
        hashlib.sha256(b"never stored").hexdigest(),
        DIGEST.upper(),
        "../../etc/passwd",
        DIGEST[:-1],
        DIGEST + "0",
    ],
)
def test_unknown_or_malformed_fingerprints_are_not_found(root: Path, name: str) -> None:
    store_blob(DATA)
    with pytest.raises(EvidenceMissingError) as caught:
        open_blob(name)
    assert caught.value.status == 404


def test_a_crash_before_the_rename_leaves_no_file_behind(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        store_blob(DATA)
    assert files_under(root) == []
    monkeypatch.undo()
    assert store_blob(DATA) == DIGEST
    assert open_blob(DIGEST) == DATA


def test_racing_writers_of_the_same_bytes_leave_one_good_file(root: Path) -> None:
    data = os.urandom(256 * 1024)
    digest = hashlib.sha256(data).hexdigest()
    start = threading.Barrier(8)
    results: list[str] = []
    errors: list[BaseException] = []

    def write() -> None:
        start.wait()
        try:
            results.append(store_blob(data))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == [digest] * 8
    assert files_under(root) == [root / "sha256" / digest[:2] / digest[2:4] / digest]
    assert open_blob(digest) == data


def test_the_store_follows_the_setting(settings: Any, tmp_path: Path) -> None:
    settings.FAPIAO_EVIDENCE_DIR = tmp_path / "first"
    store_blob(DATA)
    settings.FAPIAO_EVIDENCE_DIR = tmp_path / "second"
    with pytest.raises(EvidenceMissingError):
        open_blob(DIGEST)
    assert evidence_storage() is evidence_storage()  # cached per location


def test_a_configured_evidence_storage_is_used_through_the_plain_api(settings: Any, root: Path) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "evidence": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    assert store_blob(DATA) == DIGEST
    assert store_blob(DATA) == DIGEST
    assert open_blob(DIGEST) == DATA
    assert not root.exists()


def test_there_is_no_way_to_delete_evidence() -> None:
    public = [name for name in dir(storage_module) if not name.startswith("_")]
    assert not [
        name for name in public if any(word in name.lower() for word in ("delete", "remove", "purge"))
    ]
