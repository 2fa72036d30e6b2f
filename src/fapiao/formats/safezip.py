"""The one gate for zip archives from outside: XLSX, DOCX, OFD and plain zips (docs/spec/security.md).

A 4.7 MB spreadsheet can unpack to gigabytes (a zip bomb).  :func:`check_zip` decides whether an
archive is safe to open *before* anything reads it, in three steps, each bounded by
:class:`ZipLimits`:

1. the central directory's records are counted by walking their headers, so a directory of a
   million entries is refused before :mod:`zipfile` builds an object for each;
2. every entry's declared size, the total and each entry's compression ratio are checked, and
   encrypted entries or methods other than stored and deflate are refused;
3. every entry is then inflated in 64 KiB steps into nothing, counting: headers can lie, so an
   entry that unpacks to more than its directory says, overlaps another (the "overlapping
   files" bomb), or fails its CRC is refused the moment it does — never more than a limit's
   worth of bytes is inflated.

After a successful check the directory is known to be true, so the standard library (which
never reads past an entry's declared size) or openpyxl can open the archive safely.
:func:`open_zip` returns it opened.  Nothing here touches the database or Django.
"""

from __future__ import annotations

import io
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any, Final

from fapiao.core.errors import InvalidValueError

MIB: Final = 2**20
CHUNK: Final = 64 * 1024
_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"
_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"
_CENTRAL_SIZE = 46
_LOCAL_SIZE = 30
_SUPPORTED = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})


@dataclass(frozen=True)
class ZipLimits:
    """How big an uploaded archive may unpack (settings ``FAPIAO_ZIP_MAX_ENTRIES`` and the rest)."""

    max_entries: int = 10_000
    max_entry_bytes: int = 64 * MIB
    max_total_bytes: int = 128 * MIB
    max_ratio: int = 100
    #: An entry no bigger than this may compress better than ``max_ratio`` (a blank sheet does);
    #: its size is harmless whatever its ratio.
    ratio_grace_bytes: int = MIB


@dataclass(frozen=True)
class ZipReport:
    """A checked archive: its entries, their (now verified) unpacked total, and the bytes inflated."""

    entries: int
    total_bytes: int
    inflated_bytes: int
    names: tuple[str, ...]


class UnsafeZipError(InvalidValueError):
    """The archive cannot be accepted."""

    code = "unsafe_zip"
    #: How many bytes were inflated before the refusal (a diagnostic; never above a limit plus a step).
    inflated = 0


class ZipTooManyFilesError(UnsafeZipError):
    """The archive holds more than {max} files."""

    code = "zip_too_many_files"


class ZipEntryTooLargeError(UnsafeZipError):
    """The file {name} in the archive unpacks to more than {limit_mb} MB."""

    code = "zip_entry_too_large"


class ZipTooLargeError(UnsafeZipError):
    """The archive unpacks to more than {limit_mb} MB in all."""

    code = "zip_too_large"


class ZipBombError(UnsafeZipError):
    """The file {name} in the archive is packed over {max} to 1, like a zip bomb; it was not opened."""

    code = "zip_bomb"


class ZipDamagedError(UnsafeZipError):
    """The archive is damaged, or its contents do not match its directory."""

    code = "zip_damaged"


class ZipUnsupportedError(UnsafeZipError):
    """The file {name} in the archive is encrypted or packed in an unusual way; send a plain zip."""

    code = "zip_unsupported"


def looks_like_zip(data: bytes) -> bool:
    return data.startswith((_LOCAL, _EOCD))


def check_zip(data: bytes, limits: ZipLimits) -> ZipReport:
    """Check ``data`` as a zip archive against ``limits``; raises an :class:`UnsafeZipError`."""
    infos = _directory(data, limits)
    total = 0
    for info in infos:
        total += _check_declared(info, limits)
        if total > limits.max_total_bytes:
            raise ZipTooLargeError(limit_mb=_mb(limits.max_total_bytes))
    inflated = _inflate_all(data, infos, limits)
    return ZipReport(len(infos), total, inflated, tuple(info.filename for info in infos))


def open_zip(data: bytes, limits: ZipLimits) -> zipfile.ZipFile:
    """The archive, opened after :func:`check_zip` passed."""
    check_zip(data, limits)
    return zipfile.ZipFile(io.BytesIO(data))


def entry_names(data: bytes, max_entries: int) -> list[str] | None:
    """The member names from the directory alone (nothing inflated); None when unreadable or too many."""
    try:
        return [info.filename for info in _directory(data, ZipLimits(max_entries=max_entries))]
    except UnsafeZipError:
        return None


# --- 1. The directory ----------------------------------------------------------------------------


def _directory(data: bytes, limits: ZipLimits) -> list[zipfile.ZipInfo]:
    """The entries, after counting the directory's records without building them."""
    count = _count_records(data, limits.max_entries)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except Exception:  # zipfile raises many kinds of error on a damaged directory
        raise ZipDamagedError() from None
    if len(infos) != count:
        raise ZipDamagedError()
    return infos


def _count_records(data: bytes, max_entries: int) -> int:
    start, end = _directory_span(data)
    view = memoryview(data)
    count, position = 0, start
    while position < end:
        if view[position : position + 4] != _CENTRAL or position + _CENTRAL_SIZE > end:
            raise ZipDamagedError()
        name, extra, comment = (_u16(data, position + offset) for offset in (28, 30, 32))
        position += _CENTRAL_SIZE + name + extra + comment
        count += 1
        if count > max_entries:
            raise ZipTooManyFilesError(max=max_entries)
    if position != end:
        raise ZipDamagedError()
    return count


def _directory_span(data: bytes) -> tuple[int, int]:
    """Where the central directory starts and ends, from the end record (zip64 aware)."""
    end_record = data.rfind(_EOCD, max(0, len(data) - 22 - 0xFFFF))
    if end_record < 0 or end_record + 22 > len(data):
        raise ZipDamagedError()
    size, end = _u32(data, end_record + 12), end_record
    locator = end_record - 20
    if locator >= 0 and data[locator : locator + 4] == _EOCD64_LOCATOR:
        record = _u64(data, locator + 8)
        if record + 56 > locator or data[record : record + 4] != _EOCD64:
            # A self-extracting stub before the archive shifts offsets; the record sits before the locator.
            record = locator - 56
            if record < 0 or data[record : record + 4] != _EOCD64:
                raise ZipDamagedError()
        size, end = _u64(data, record + 40), record
    start = end - size
    if start < 0:
        raise ZipDamagedError()
    return start, end


# --- 2. What the directory declares ---------------------------------------------------------------


def _check_declared(info: zipfile.ZipInfo, limits: ZipLimits) -> int:
    name = _shown(info.filename)
    if info.flag_bits & 0x1 or info.compress_type not in _SUPPORTED:
        raise ZipUnsupportedError(name=name)
    if info.file_size > limits.ratio_grace_bytes and info.file_size > info.compress_size * limits.max_ratio:
        raise ZipBombError(name=name, max=limits.max_ratio)
    if info.file_size > limits.max_entry_bytes:
        raise ZipEntryTooLargeError(name=name, limit_mb=_mb(limits.max_entry_bytes))
    if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
        raise ZipDamagedError()
    return int(info.file_size)


# --- 3. What the entries really hold ---------------------------------------------------------------


def _inflate_all(data: bytes, infos: list[zipfile.ZipInfo], limits: ZipLimits) -> int:
    """Inflate every entry into nothing, in order on disk, refusing overlaps and lies."""
    view = memoryview(data)
    ordered = sorted(infos, key=lambda info: info.header_offset)
    directory_start, _end = _directory_span(data)
    inflated = 0
    for index, info in enumerate(ordered):
        start = _data_start(data, info)
        end = start + info.compress_size
        following = ordered[index + 1].header_offset if index + 1 < len(ordered) else directory_start
        if end > following:
            raise _with(ZipDamagedError(), inflated)
        try:
            inflated += _inflate(view[start:end], info)
        except UnsafeZipError as error:
            raise _with(error, inflated + error.inflated) from None
    return inflated


def _data_start(data: bytes, info: zipfile.ZipInfo) -> int:
    offset = info.header_offset
    if offset < 0 or data[offset : offset + 4] != _LOCAL or offset + _LOCAL_SIZE > len(data):
        raise ZipDamagedError()
    return offset + _LOCAL_SIZE + _u16(data, offset + 26) + _u16(data, offset + 28)


def _inflate(packed: memoryview, info: zipfile.ZipInfo) -> int:
    """The bytes ``packed`` unpacks to, refusing as soon as they pass what the directory declared
    (which the limits have already bounded)."""
    declared = int(info.file_size)
    if info.compress_type == zipfile.ZIP_STORED:
        if zlib.crc32(packed) != info.CRC:
            raise ZipDamagedError()
        return declared
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    produced, crc = 0, 0
    for position in range(0, len(packed), CHUNK):
        pending = bytes(packed[position : position + CHUNK])
        while pending:
            # A step at a time, and at most one byte past the declared size: enough to know it lied.
            out = inflater.decompress(pending, min(CHUNK, declared - produced + 1))
            produced += len(out)
            crc = zlib.crc32(out, crc)
            if produced > declared:
                raise _with(ZipDamagedError(), produced)
            pending = inflater.unconsumed_tail
            if inflater.eof:
                break
        if inflater.eof:
            break
    if not inflater.eof or produced != declared or crc != info.CRC:
        raise _with(ZipDamagedError(), produced)
    return produced


# --- Small helpers ----------------------------------------------------------------------------------


def _with(error: UnsafeZipError, inflated: int) -> UnsafeZipError:
    error.inflated = inflated
    return error


def _shown(name: str) -> str:
    """An entry name fit to quote back: no control or bidi characters, bounded."""
    clean = "".join(char for char in name if unicodedata.category(char)[0] != "C")
    return clean[:100] or "?"


def _mb(limit: int) -> int | float:
    whole, rest = divmod(limit, MIB)
    return whole if rest == 0 else round(limit / MIB, 1)


def _u16(data: Any, at: int) -> int:
    return int.from_bytes(data[at : at + 2], "little")


def _u32(data: Any, at: int) -> int:
    return int.from_bytes(data[at : at + 4], "little")


def _u64(data: Any, at: int) -> int:
    return int.from_bytes(data[at : at + 8], "little")
