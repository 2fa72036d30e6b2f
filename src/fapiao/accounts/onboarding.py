"""Operators onboard merchants: create the merchant, allocate its number segments (号段).

A segment is a range of 15-digit serials for one year (YY), province and channel.  Two segments
of the same year, province and channel never overlap, whichever merchants hold them: that is what
makes invoice numbers globally unique without a global counter.  The overlap check and the insert
run under a lock on that (year, province, channel) series, so two operators allocating at the same
moment cannot both succeed with overlapping ranges.
"""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from fapiao.accounts.models import Merchant, NumberSegment, User
from fapiao.accounts.permissions import Action, require
from fapiao.core.errors import ConflictError, FieldError, InvalidValueError, ValidationFailed, _
from fapiao.core.identifiers import validate_uscc
from fapiao.core.text import clean_name, clean_text
from fapiao.platform.auditing import record

MAX_SERIAL = 10**15 - 1
ADVISORY_LOCK_NAMESPACE = 0x66617069  # "fapi": number-segment series locks on PostgreSQL


class MerchantExistsError(ConflictError):
    """A merchant with this unified social credit code already exists."""

    code = "merchant_exists"


class SegmentOverlapError(ConflictError):
    """This range overlaps a number segment already allocated; choose a free range."""

    code = "segment_overlap"


def merchant_snapshot(merchant: Merchant) -> dict[str, object]:
    return {"uscc": merchant.uscc, "name": merchant.name, "is_active": merchant.is_active}


def create_merchant(*, actor: User, uscc: str, name: str, address: str = "", phone: str = "") -> Merchant:
    require(actor, Action.MANAGE_MERCHANTS)
    errors: list[FieldError] = []
    try:
        uscc = validate_uscc(uscc)
    except InvalidValueError as error:
        errors.append(error.at("uscc"))
    try:
        name = clean_name(name, max_len=100)
    except InvalidValueError as error:
        errors.append(error.at("name"))
    for field, value, most in (("address", address, 200), ("phone", phone, 30)):
        try:
            clean_text(value, max_len=most)
        except InvalidValueError as error:
            errors.append(error.at(field))
    if errors:
        raise ValidationFailed(errors)
    try:
        with transaction.atomic():
            if Merchant.objects.filter(uscc=uscc).exists():
                raise MerchantExistsError()
            merchant = Merchant.objects.create(
                uscc=uscc, name=name, address=address.strip(), phone=phone.strip()
            )
            record(
                actor=actor,
                action="merchant.create",
                target=merchant,
                merchant=merchant,
                after=merchant_snapshot(merchant),
            )
    except IntegrityError:  # a concurrent create of the same USCC
        raise MerchantExistsError() from None
    return merchant


def _check_segment(year: int, province: str, channel: int, first_serial: int, last_serial: int) -> None:
    errors: list[FieldError] = []
    this_year = timezone.localdate().year
    if not this_year <= year <= 2099:
        errors.append(
            FieldError(
                "year", "bad_year", _("Allocate for this year ({year}) or a later one."), {"year": this_year}
            )
        )
    if len(province) != 2 or not province.isascii() or not province.isdigit():
        errors.append(
            FieldError("province", "bad_province", _("The province code is two digits (Beijing: 11)."))
        )
    if not 0 <= channel <= 9:
        errors.append(FieldError("channel", "bad_channel", _("The channel is one digit, 0–9.")))
    for field, value in (("first_serial", first_serial), ("last_serial", last_serial)):
        if not 1 <= value <= MAX_SERIAL:
            errors.append(
                FieldError(
                    field,
                    "out_of_range",
                    _("A serial is a whole number from 1 to {most}."),
                    {"most": MAX_SERIAL},
                )
            )
    if not errors and first_serial > last_serial:
        errors.append(
            FieldError("last_serial", "before_first", _("The last serial must not be below the first."))
        )
    if errors:
        raise ValidationFailed(errors)


def _lock_series(year: int, province: str, channel: int) -> None:
    """Serialise allocations in one series.  SQLite's IMMEDIATE transactions already hold the write lock."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)",
                [ADVISORY_LOCK_NAMESPACE, (year % 100) * 1000 + int(province) * 10 + channel],
            )


def allocate_segment(
    *,
    actor: User,
    merchant: Merchant,
    year: int,
    first_serial: int,
    last_serial: int,
    channel: int = 0,
    province: str | None = None,
) -> NumberSegment:
    """Give ``merchant`` the serials ``first_serial``–``last_serial`` of ``year`` (a calendar year)."""
    require(actor, Action.MANAGE_MERCHANTS)
    province = (province if province is not None else settings.FAPIAO_PROVINCE_CODE).strip()
    _check_segment(year, province, channel, first_serial, last_serial)
    yy = year % 100
    with transaction.atomic():
        _lock_series(yy, province, channel)
        clash = (
            NumberSegment.objects.filter(
                year=yy,
                province=province,
                channel=channel,
                first_serial__lte=last_serial,
                last_serial__gte=first_serial,
            )
            .order_by("first_serial")
            .first()
        )
        if clash is not None:
            raise SegmentOverlapError(
                _("This range overlaps the allocated segment {first}–{last}; choose a free range."),
                first=clash.first_serial,
                last=clash.last_serial,
            )
        segment = NumberSegment.objects.create(
            merchant=merchant,
            year=yy,
            province=province,
            channel=channel,
            first_serial=first_serial,
            last_serial=last_serial,
            next_serial=first_serial,
        )
        record(
            actor=actor,
            action="segment.allocate",
            target=segment,
            merchant=merchant,
            after={
                "merchant": merchant.uscc,
                "year": yy,
                "province": province,
                "channel": channel,
                "first_serial": first_serial,
                "last_serial": last_serial,
            },
        )
    return segment
