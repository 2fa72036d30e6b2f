"""Zip bombs for tests, built without ever holding (or compressing) what they unpack to.

A deflate stream of N identical blocks is one block's compressed bytes repeated N times: each
block ends with a full flush, so none refers back to another.  The directory can tell the truth
about the size (the guard must refuse before inflating) or lie (the guard must stop inflating
as soon as the bytes pass what was declared).
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass

from fapiao.formats.batch_template import write_template

MIB = 2**20
SHARED_STRINGS = "xl/sharedStrings.xml"
CONTENT_TYPES = "[Content_Types].xml"
STRINGS_TYPE = (
    b'<Override PartName="/xl/sharedStrings.xml" '
    b'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
)


@dataclass(frozen=True)
class Member:
    name: str
    packed: bytes
    size: int
    crc: int
    method: int = zipfile.ZIP_DEFLATED


def bomb_stream(
    size: int,
    block: bytes = b"<si><t>AAAAAAAAAAAAAAAA</t></si>" * 32768,
    head: bytes = b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">',
    tail: bytes = b"</sst>",
) -> tuple[bytes, int]:
    """A raw deflate stream: ``head``, ``block`` repeated to about ``size`` bytes, ``tail``; and its size."""

    def packed(data: bytes, final: bool) -> bytes:
        packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        return packer.compress(data) + packer.flush(zlib.Z_FINISH if final else zlib.Z_FULL_FLUSH)

    count = max(1, size // len(block))
    stream = packed(head, False) + packed(block, False) * count + packed(tail, True)
    return stream, len(head) + count * len(block) + len(tail)


def deflated(name: str, raw: bytes) -> Member:
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return Member(name, packer.compress(raw) + packer.flush(), len(raw), zlib.crc32(raw))


def members_of(data: bytes) -> list[Member]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [deflated(info.filename, archive.read(info)) for info in archive.infolist()]


def build_zip(members: list[Member]) -> bytes:
    """A zip of ``members`` as given: sizes and CRCs are written exactly as the members say."""
    out = io.BytesIO()
    central = []
    for member in members:
        offset = out.tell()
        name = member.name.encode()
        flags = 0 if member.name.isascii() else 0x800  # UTF-8 names
        sizes = (member.crc, len(member.packed), member.size)
        out.write(
            struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, flags, member.method, 0, 0, *sizes, len(name), 0)
        )
        out.write(name)
        out.write(member.packed)
        central.append(
            struct.pack(
                "<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, flags, member.method, 0, 0, *sizes,
                len(name), 0, 0, 0, 0, 0, offset,
            ) + name
        )  # fmt: skip
    start = out.tell()
    directory = b"".join(central)
    out.write(directory)
    out.write(
        struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(members), len(members), len(directory), start, 0)
    )
    return out.getvalue()


def xlsx_bomb(unpacked: int, *, declared: int | None = None) -> bytes:
    """The batch template with its shared strings replaced by ``unpacked`` bytes of strings.

    ``declared``: the size the directory claims (default: the truth).  The CRC is not computed
    (the bomb would have to be unpacked for it); a guard must refuse long before it matters.
    """
    members = []
    for found in members_of(write_template("xlsx")):
        if found.name == CONTENT_TYPES:  # declare the shared strings, so a reader reads them
            types = zlib.decompress(found.packed, -zlib.MAX_WBITS)
            members.append(deflated(found.name, types.replace(b"</Types>", STRINGS_TYPE + b"</Types>")))
        elif found.name != SHARED_STRINGS:
            members.append(found)
    packed, size = bomb_stream(unpacked)
    members.append(Member(SHARED_STRINGS, packed, size if declared is None else declared, 0))
    return build_zip(members)


def zip_with(name: str, unpacked: int, *, declared: int | None = None) -> bytes:
    """A plain zip of one bomb member."""
    packed, size = bomb_stream(unpacked)
    return build_zip([Member(name, packed, size if declared is None else declared, 0)])
