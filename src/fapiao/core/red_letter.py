"""Red letters (红字发票): parsing a red-letter request and the lines it reverses (docs/spec/invoices.md).

A red letter reverses a blue invoice in full or line by line, never more than what is left of a
line; the blue invoice's state follows from what all its red letters took (:func:`state_after`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from fapiao.core.choices import InvoiceState
from fapiao.core.errors import ConflictError, InvalidValueError, ValidationFailed, _
from fapiao.core.invoice import (
    Errors,
    Line,
    line_list,
    optional,
    required,
)
from fapiao.core.money import (
    format_decimal,
    line_amount,
    parse_decimal,
)
from fapiao.core.tax import line_tax

_CONFIRMATION_NO = re.compile(r"[0-9A-Za-z-]{1,30}", re.ASCII)
_RED_KEYS = frozenset({"full", "lines", "confirmation_no", "reason"})
#: 红冲原因, as the 数电票 red-letter confirmation form names them (code → the words written on the
#: red invoice's remark).
RED_LETTER_REASONS: dict[str, str] = {
    "error": "开票有误",
    "return": "销货退回",
    "service_stopped": "服务中止",
    "allowance": "销售折让",
}
_RED_LINE_KEYS = frozenset({"line_no", "quantity"})
_ZERO = Decimal(0)


class FullyRedLetteredError(ConflictError):
    """This invoice has already been fully red-lettered."""

    code = "fully_red_lettered"


@dataclass(frozen=True)
class RedLetterItem:
    line_no: int
    quantity: Decimal


@dataclass(frozen=True)
class RedLetterRequest:
    """``full`` reverses everything still open; otherwise ``lines`` says how much of which line."""

    full: bool
    lines: tuple[RedLetterItem, ...]
    confirmation_no: str | None  # 红字确认单编号, where there is one
    reason: str | None = None  # a key of RED_LETTER_REASONS (the pages always ask for one)


def _line_no(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValueError(_("Enter the line number as an integer."), code="not_an_integer")
    if value < 1:
        raise InvalidValueError(_("Line numbers start at 1."), code="not_positive")
    return value


def _confirmation_no(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidValueError(_("Enter text here."), code="not_a_string")
    if not _CONFIRMATION_NO.fullmatch(value):
        raise InvalidValueError(_("Use 1 to {max} letters, digits or hyphens."), code="bad_format", max=30)
    return value


def _red_items(errors: Errors, raw: object) -> list[RedLetterItem]:
    items: list[RedLetterItem] = []
    seen: set[int] = set()
    for index, entry in enumerate(line_list(errors, raw)):
        path = f"lines.{index}"
        data = errors.mapping(entry, path)
        if data is None:
            continue
        errors.unknown(data, _RED_LINE_KEYS, f"{path}.")
        line_no = required(errors, data, "line_no", path, _line_no)
        quantity = required(errors, data, "quantity", path, parse_decimal)
        if line_no in seen:
            errors.add(f"{path}.line_no", "duplicate_line", _("Line {no} is listed twice."), no=line_no)
        elif line_no is not None:
            seen.add(line_no)
            if quantity is not None:
                items.append(RedLetterItem(line_no, quantity))
    return items


def parse_red_letter_request(data: object) -> RedLetterRequest:
    """Validate ``{"full": true}`` or ``{"lines": [{"line_no", "quantity"}]}``, plus ``confirmation_no``
    and the 红冲原因 ``reason`` (optional for API clients, asked for by the pages)."""
    errors = Errors()
    if not isinstance(data, Mapping):
        errors.add("", "not_an_object", _("Send a JSON object."))
        raise ValidationFailed(errors.items)
    errors.unknown(data, _RED_KEYS, "")
    has_full, has_lines = data.get("full") is not None, data.get("lines") is not None
    items: list[RedLetterItem] = []
    if has_full == has_lines:
        errors.add("", "full_or_lines", _('Send either "full": true or a list of "lines", not both.'))
    elif has_full and data["full"] is not True:
        if isinstance(data["full"], bool):
            errors.add("full", "must_be_true", _('Use "full": true, or list the lines to red-letter.'))
        else:
            errors.add("full", "not_a_boolean", _("Enter true or false."))
    elif has_lines:
        items = _red_items(errors, data["lines"])
    confirmation_no = optional(errors, data.get("confirmation_no"), "confirmation_no", _confirmation_no)
    reason = optional(errors, data.get("reason"), "reason", _reason)
    if errors.items:
        raise ValidationFailed(errors.items)
    return RedLetterRequest(has_full, tuple(items), confirmation_no, reason)


def _reason(value: object) -> str:
    if not isinstance(value, str) or value not in RED_LETTER_REASONS:
        raise InvalidValueError(
            _("Choose one of: {choices}."), code="invalid_choice", choices=", ".join(RED_LETTER_REASONS)
        )
    return value


def red_remark(reason: str | None, original_remark: str, limit: int) -> str:
    """The red invoice's remark: 红冲原因 first, then the blue invoice's remark where it fits."""
    if reason is None:
        return original_remark
    said = f"红冲原因：{RED_LETTER_REASONS[reason]}"
    both = f"{said}\n{original_remark}" if original_remark else said
    return both if len(both) <= limit else said


Already = Mapping[int, tuple[Decimal, int, int]]


def _remaining(line: Line, already: Already) -> tuple[Decimal, int, int]:
    quantity, amount, tax = already.get(line.no, (_ZERO, 0, 0))
    return line.quantity - quantity, line.amount - amount, line.tax - tax


def _red_line(no: int, line: Line, quantity: Decimal, amount: int, tax: int) -> Line:
    return Line(
        no, line.name, line.tax_code, line.spec, line.unit, -quantity, line.unit_price,
        line.rate, -amount, -tax, original_no=line.no,
    )  # fmt: skip


def red_letter_lines(
    original: Sequence[Line], already: Already, request: RedLetterRequest
) -> tuple[Line, ...]:
    """The negative lines of a red invoice reversing ``request`` of ``original``.

    ``already`` maps an original line number to what earlier red invoices took from it
    (positive quantity, amount fen, tax fen).  Taking a line's whole remaining quantity
    takes exactly its remaining amount and tax, so the red invoices of a line always sum
    to its exact negation; a partial quantity is priced like issue, capped at what remains.
    """
    open_lines = [line for line in original if _remaining(line, already)[0] > 0]
    if not open_lines:
        raise FullyRedLetteredError()
    if request.full:
        return tuple(_red_line(no, line, *_remaining(line, already)) for no, line in enumerate(open_lines, 1))
    by_no = {line.no: line for line in original}
    errors = Errors()
    result: list[Line] = []
    for index, item in enumerate(request.lines):
        line = by_no.get(item.line_no)
        if line is None:
            errors.add(
                f"lines.{index}.line_no",
                "unknown_line",
                _("The invoice has no line {line_no}."),
                line_no=item.line_no,
            )
            continue
        quantity, amount, tax = _remaining(line, already)
        if not _ZERO < item.quantity <= quantity:
            errors.add(
                f"lines.{index}.quantity", "exceeds_remaining", _("At most {remaining} remains."),
                remaining=format_decimal(max(quantity, _ZERO)),
            )  # fmt: skip
            continue
        if item.quantity < quantity:
            amount = min(line_amount(item.quantity, line.unit_price), amount)
            tax = min(line_tax(amount, line.rate), tax)
            if amount == 0:
                errors.add(
                    f"lines.{index}.quantity", "zero_amount", _("The amount rounds to zero; red-letter more.")
                )
                continue
        result.append(_red_line(len(result) + 1, line, item.quantity, amount, tax))
    if errors.items:
        raise ValidationFailed(errors.items)
    return tuple(result)


def take(already: Already, red_lines: Sequence[Line]) -> dict[int, tuple[Decimal, int, int]]:
    """``already`` with what ``red_lines`` (negative, each naming its ``original_no``) take added."""
    taken = dict(already)
    for line in red_lines:
        if line.original_no is None:
            continue
        quantity, amount, tax = taken.get(line.original_no, (_ZERO, 0, 0))
        taken[line.original_no] = (quantity - line.quantity, amount - line.amount, tax - line.tax)
    return taken


def match_red_lines(original: Sequence[Line], red: Sequence[Line], already: Already) -> tuple[Line, ...]:
    """The lines of a red invoice read from a file, each given the blue line it reverses.

    A file does not say which blue line a red line reverses; the red line of a 数电票 repeats the
    blue line's item name and rate.  Each red line goes to the first blue line of the same name and
    rate with something left (or, all taken, the first of that name and rate); failing that, to the
    blue line at the same position when both invoices have as many lines; else to none.
    """
    taken = dict(already)
    result: list[Line] = []
    for index, line in enumerate(red):
        same = [o for o in original if o.name == line.name and o.rate == line.rate]
        open_ = [o for o in same if _remaining(o, taken)[1] > 0 or _remaining(o, taken)[0] > 0]
        if open_ or same:
            no: int | None = (open_ or same)[0].no
        elif len(original) == len(red):
            no = original[index].no
        else:
            no = None
        matched = replace(line, original_no=no)
        taken = take(taken, [matched])
        result.append(matched)
    return tuple(result)


def state_after(original_lines: Sequence[Line], already_after: Already) -> InvoiceState:
    """The legal state of a blue invoice once ``already_after`` has been red-lettered."""
    taken = [already_after.get(line.no, (_ZERO, 0, 0)) for line in original_lines]
    if all(
        q >= line.quantity and a >= line.amount and t >= line.tax
        for line, (q, a, t) in zip(original_lines, taken, strict=True)
    ):
        return InvoiceState.FULLY_RED
    if any(q > 0 or a > 0 or t > 0 for q, a, t in taken):
        return InvoiceState.PARTLY_RED
    return InvoiceState.NORMAL
