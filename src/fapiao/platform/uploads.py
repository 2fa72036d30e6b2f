"""The upload guard's limits, from settings: one place every upload path takes them from.

The guard itself (:mod:`fapiao.formats.safezip`) knows nothing of Django; batch issuing, evidence,
e-mail import, mail-in — and the importers to come (OFD is a zip) — pass it :func:`zip_limits`.
"""

from __future__ import annotations

from django.conf import settings

from fapiao.formats.safezip import MIB, ZipLimits


def zip_limits() -> ZipLimits:
    """The upload guard's settings (``FAPIAO_ZIP_MAX_ENTRIES`` and the rest) as :class:`ZipLimits`."""
    return ZipLimits(
        max_entries=int(settings.FAPIAO_ZIP_MAX_ENTRIES),
        max_entry_bytes=int(settings.FAPIAO_ZIP_MAX_ENTRY_MB) * MIB,
        max_total_bytes=int(settings.FAPIAO_ZIP_MAX_TOTAL_MB) * MIB,
        max_ratio=int(settings.FAPIAO_ZIP_MAX_RATIO),
    )
