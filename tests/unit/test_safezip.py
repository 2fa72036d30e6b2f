"""The upload guard for zip archives: bombs are refused before (or while) unpacking, never after."""

from __future__ import annotations

import contextlib
import io
import random
import struct
import time
import tracemalloc
import zipfile
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fapiao.formats.batch_template import write_template
from fapiao.formats.safezip import (
    UnsafeZipError,
    ZipBombError,
    ZipDamagedError,
    ZipEntryTooLargeError,
    ZipLimits,
    ZipTooLargeError,
    ZipTooManyFilesError,
    ZipUnsupportedError,
    check_zip,
    entry_names,
    open_zip,
)
from tests.zipbombs import MIB, SHARED_STRINGS, Member, build_zip, xlsx_bomb, zip_with

LIMITS = ZipLimits()


def plain(*members: tuple[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return out.getvalue()


def refused(data: bytes, limits: ZipLimits = LIMITS) -> UnsafeZipError:
    started = time.perf_counter()
    with pytest.raises(UnsafeZipError) as caught:
        check_zip(data, limits)
    assert time.perf_counter() - started < 2
    return caught.value


def test_a_real_workbook_passes_and_every_byte_is_checked() -> None:
    data = write_template("xlsx")
    report = check_zip(data, LIMITS)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert report.total_bytes == sum(info.file_size for info in archive.infolist())
        assert report.names == tuple(archive.namelist())
    assert report.inflated_bytes == report.total_bytes
    assert open_zip(data, LIMITS).read("xl/workbook.xml").startswith(b"<")


def test_the_reported_bomb_is_refused_from_its_directory_without_inflating_a_byte() -> None:
    """Issue 13 finding 4: a few MB expanding to a 1.39 GB sharedStrings.xml."""
    bomb = xlsx_bomb(1390 * MIB)
    assert len(bomb) < 5 * MIB
    error = refused(bomb)
    assert isinstance(error, ZipBombError)
    assert error.params == {"name": SHARED_STRINGS, "max": 100}
    assert error.inflated == 0


def test_a_large_entry_that_compresses_like_a_document_is_refused_by_size() -> None:
    data = build_zip([Member("big.xml", b"x" * (MIB), 65 * MIB, 0)])  # ratio 65: plausible, but too big
    error = refused(data)
    assert isinstance(error, ZipEntryTooLargeError)
    assert error.params == {"name": "big.xml", "limit_mb": 64}


def test_entries_each_within_limits_but_too_much_in_all() -> None:
    limits = ZipLimits(max_entry_bytes=2 * MIB, max_total_bytes=5 * MIB)
    noise = random.Random(13).randbytes(2 * MIB)
    data = plain(*((f"part{i}.bin", noise) for i in range(3)))  # 2 MiB each
    error = refused(data, limits)
    assert isinstance(error, ZipTooLargeError)
    assert error.params == {"limit_mb": 5}
    assert error.inflated == 0


def test_a_directory_that_lies_is_caught_while_inflating_and_inflating_stops_there() -> None:
    """The directory claims 16 MiB (a plausible ratio); the stream holds 256 MiB."""
    declared = 16 * MIB
    bomb = xlsx_bomb(256 * MIB, declared=declared)
    tracemalloc.start()
    try:
        error = refused(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(error, ZipDamagedError)
    others = sum(info.file_size for info in zipfile.ZipFile(io.BytesIO(bomb)).infolist()) - declared
    assert declared < error.inflated <= others + declared + 1  # one byte past the lie, not one more
    assert peak < 8 * MIB


def test_a_directory_that_understates_a_small_entry_is_caught_too() -> None:
    error = refused(zip_with("a.xml", 4 * MIB, declared=1000))
    assert isinstance(error, ZipDamagedError)
    assert error.inflated == 1001


def test_too_many_files_are_refused_while_counting_the_directory() -> None:
    data = plain(*((f"{i}.txt", b"") for i in range(30)))
    error = refused(data, ZipLimits(max_entries=29))
    assert isinstance(error, ZipTooManyFilesError)
    assert error.params == {"max": 29}
    assert check_zip(data, ZipLimits(max_entries=30)).entries == 30
    assert entry_names(data, 29) is None
    assert entry_names(data, 30) == [f"{i}.txt" for i in range(30)]


def test_overlapping_entries_are_damaged() -> None:
    """Two directory records pointing at the same data: the "overlapping files" bomb."""
    packed = zlib.compress(b"a" * 1000)[2:-4]
    member = Member("a.xml", packed, 1000, zlib.crc32(b"a" * 1000))
    data = build_zip([member])
    end = data.rfind(b"PK\x05\x06")
    start = data.rfind(b"PK\x01\x02")
    record = data[start:end].replace(b"a.xml", b"b.xml")
    directory = data[start:end] + record
    eocd = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 2, 2, len(directory), start, 0)
    error = refused(data[:start] + directory + eocd)
    assert isinstance(error, ZipDamagedError)


def test_a_wrong_crc_is_damaged() -> None:
    packed = zlib.compress(b"hello")[2:-4]
    assert isinstance(refused(build_zip([Member("a.txt", packed, 5, 1234)])), ZipDamagedError)
    stored = build_zip([Member("a.txt", b"hello", 5, 1234, method=zipfile.ZIP_STORED)])
    assert isinstance(refused(stored), ZipDamagedError)
    good = build_zip([Member("a.txt", b"hello", 5, zlib.crc32(b"hello"), method=zipfile.ZIP_STORED)])
    assert check_zip(good, LIMITS).total_bytes == 5


@pytest.mark.parametrize(
    ("flags", "method"),
    [pytest.param(1, zipfile.ZIP_DEFLATED, id="encrypted"), pytest.param(0, zipfile.ZIP_BZIP2, id="bzip2")],
)
def test_entries_that_cannot_be_checked_are_refused(flags: int, method: int) -> None:
    data = bytearray(build_zip([Member("secret.xlsx", b"\x00" * 10, 10, 0, method=method)]))
    central = data.rfind(b"PK\x01\x02")
    data[central + 8 : central + 10] = flags.to_bytes(2, "little")
    error = refused(bytes(data))
    assert isinstance(error, ZipUnsupportedError)
    assert error.params == {"name": "secret.xlsx"}


def test_a_small_entry_may_compress_very_well() -> None:
    """A blank sheet compresses hundreds to one; under the grace size its ratio is no danger."""
    data = plain(("blank.xml", b" " * (MIB // 2)))
    assert check_zip(data, LIMITS).total_bytes == MIB // 2


def test_control_characters_in_a_name_are_not_quoted_back() -> None:
    data = build_zip([Member("evil\u202e\x07.xml", b"x" * 1000, 65 * MIB, 0)])
    assert refused(data).params["name"] == "evil.xml"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_are_refused_cleanly(body: bytes) -> None:
    for data in (b"PK\x03\x04" + body, body + b"PK\x05\x06" + body[:18]):
        with contextlib.suppress(UnsafeZipError):  # any other exception fails the test
            check_zip(data, LIMITS)
