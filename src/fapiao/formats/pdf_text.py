"""Text on our PDFs: reportlab's built-in CJK font, and markup that every extractor maps back.

``STSong-Light`` is a CID font reportlab knows without font files (readers substitute their own
Song typeface), so a fresh machine renders Chinese with nothing installed.  User text is drawn
only with glyphs the fonts map back to Unicode, so a clerk (or a test) who extracts the text gets
what was written: a character ``STSong-Light`` lacks goes to Helvetica if WinAnsi has it,
otherwise it is written as ``[U+XXXX]`` — an emoji, a stray control or a right-to-left override is
shown, never silently dropped or garbled.
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Final
from xml.sax.saxutils import escape

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont

CJK_FONT: Final = "STSong-Light"
LATIN_FONT: Final = "Helvetica"
MONO_FONT: Final = "Courier"
# GBK characters that the UniGB-UCS2-H CMap has no code for (pinyin ń ň ɑ ɡ, vertical forms, a few
# compatibility ideographs, and the middle dot, which WinAnsi has); all other GBK characters map back.
_CMAP_GAPS: Final = frozenset("\u00b7\u0144\u0148\u0251\u0261\uf979\uf995\uf9e7\uf9f1\ufa0c\ufe31") | {
    chr(c) for c in range(0xFE33, 0xFE45)
}


def _encodable(char: str, codec: str) -> bool:
    try:
        char.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def font_for(char: str) -> str | None:
    """The font that draws ``char`` and maps it back to Unicode, or None if neither can."""
    if " " <= char <= "~":
        return CJK_FONT
    if unicodedata.category(char)[0] == "C":  # controls, format marks, surrogates, unassigned
        return None
    if char not in _CMAP_GAPS and _encodable(char, "gbk"):
        return CJK_FONT
    return LATIN_FONT if _encodable(char, "cp1252") else None


def paragraph_markup(text: str) -> str:
    """Paragraph markup for untrusted ``text``: XML-escaped, one ``<font>`` per run of another font."""
    out: list[str] = []
    for char in text:
        font = font_for(char)
        if font == CJK_FONT:
            out.append(escape(char))
        elif font is not None:
            out.append(f'<font name="{font}">{escape(char)}</font>')
        else:
            out.append(f'<font name="{MONO_FONT}" color="#777777">[U+{ord(char):04X}]</font>')
    return "".join(out).replace(f'</font><font name="{LATIN_FONT}">', "")


@functools.cache
def register_fonts() -> None:
    """Register the CJK font with reportlab (once per process)."""
    pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
