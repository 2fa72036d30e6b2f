"""Invoice rows against ledger entries: states folded from red letters, document diffs, flag runs.

What the streaming :class:`~fapiao.core.ledger_check.LogChecker` cannot do alone; the Django
side of ``fapiao ledger verify`` feeds these helpers.  Pure Python, no Django.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from fapiao.core.choices import Colour, EntryKind, InvoiceState, Origin
from fapiao.core.errors import FapiaoError
from fapiao.core.invoice import Line
from fapiao.core.ledger_findings import Finding, FindingCode
from fapiao.core.money import parse_money
from fapiao.core.red_letter import state_after

__all__ = ["StateFold", "document_diff", "flag_runs", "invoice_findings"]

C = FindingCode


class StateFold:
    """What a log's red-letter, void and revert entries say about each blue invoice's state.

    A red invoice counts by its entry: ``red_letter`` when issued here, ``import`` when read from
    a file; a red invoice whose import was reverted no longer counts against its original.
    """

    def __init__(self) -> None:
        # original number → red number → per original line (quantity, amount, tax) taken
        self.reds: dict[str, dict[str, dict[int, tuple[Decimal, int, int]]]] = {}
        self.voided: set[str] = set()
        self.reverted: set[str] = set()
        self.uncertain: set[str] = set()

    @property
    def taken(self) -> dict[str, dict[int, tuple[Decimal, int, int]]]:
        """Per original number, what its red invoices still in force took from each line."""
        return {original: self._taken(original) for original in self.reds}

    def _taken(self, original: str) -> dict[int, tuple[Decimal, int, int]]:
        taken: dict[int, tuple[Decimal, int, int]] = {}
        for red, lines in self.reds.get(original, {}).items():
            if red in self.reverted:
                continue
            for no, (quantity, amount, tax) in lines.items():
                q, a, t = taken.get(no, (Decimal(0), 0, 0))
                taken[no] = (q + quantity, a + amount, t + tax)
        return taken

    def add(self, entry: Mapping[str, Any] | None, *, trusted: bool = True) -> None:
        invoice = entry.get("invoice") if entry else None
        if not isinstance(invoice, Mapping):
            return
        kind = entry.get("kind") if entry else None
        if kind == EntryKind.VOID and isinstance(invoice.get("number"), str):
            (self.voided if trusted else self.uncertain).add(invoice["number"])
            return
        if kind == EntryKind.REVERT and isinstance(invoice.get("number"), str):
            (self.reverted if trusted else self.uncertain).add(invoice["number"])
            if not trusted and isinstance(invoice.get("original_number"), str):
                self.uncertain.add(invoice["original_number"])
            return
        original = invoice.get("original_number")
        if kind not in (EntryKind.RED_LETTER, EntryKind.IMPORT) or not isinstance(original, str):
            return
        if not trusted:
            self.uncertain.add(original)
            return
        try:
            additions = [
                (
                    int(line["original_no"]),
                    -Decimal(str(line["quantity"])),
                    -parse_money(line["amount"], allow_negative=True),
                    -parse_money(line["tax"], allow_negative=True),
                )
                for line in invoice["lines"]
                if kind != EntryKind.IMPORT or line.get("original_no") is not None
            ]
        except (KeyError, TypeError, ValueError, InvalidOperation, AttributeError, FapiaoError):
            self.uncertain.add(original)
            return
        red = invoice.get("number")
        taken = self.reds.setdefault(original, {}).setdefault(red if isinstance(red, str) else "", {})
        for no, quantity, amount, tax in additions:
            q, a, t = taken.get(no, (Decimal(0), 0, 0))
            taken[no] = (q + quantity, a + amount, t + tax)

    def expected_state(self, number: str, colour: str, lines: Sequence[Line]) -> InvoiceState | None:
        """The state the entries give invoice ``number``; None when an altered entry hides it."""
        if number in self.uncertain:
            return None
        if number in self.reverted:
            return InvoiceState.REVERTED
        if number in self.voided:
            return InvoiceState.VOIDED
        if colour != Colour.BLUE:
            return InvoiceState.NORMAL
        return state_after(lines, self._taken(number))


_KIND_ORIGIN: dict[str, Origin] = {
    EntryKind.ISSUE: Origin.ISSUED,
    EntryKind.RED_LETTER: Origin.ISSUED,
    EntryKind.IMPORT: Origin.IMPORTED,
    EntryKind.RESTORE: Origin.RESTORED,
    EntryKind.REISSUE: Origin.REISSUED,
}
KIND_ORIGIN = _KIND_ORIGIN  # the origin a row rebuilt from an entry of each kind has
_ABSENT = object()


def _show(value: object) -> str:
    if value is _ABSENT:
        return "—"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def document_diff(row: object, entry: object, path: str = "") -> list[tuple[str, str, str]]:
    """Where two invoice documents differ: ``(dotted path, row value, entry value)``, in key order."""
    if isinstance(row, Mapping) and isinstance(entry, Mapping):
        found: list[tuple[str, str, str]] = []
        for key in sorted(set(row) | set(entry)):
            child = f"{path}.{key}" if path else str(key)
            found += document_diff(row.get(key, _ABSENT), entry.get(key, _ABSENT), child)
        return found
    if isinstance(row, list) and isinstance(entry, list) and len(row) == len(entry):
        found = []
        for i, (left, right) in enumerate(zip(row, entry, strict=True)):
            found += document_diff(left, right, f"{path}.{i}")
        return found
    if type(row) is type(entry) and row == entry:
        return []
    if isinstance(row, list) and isinstance(entry, list):
        return [(f"{path}.length", str(len(row)), str(len(entry)))]
    return [(path, _show(row), _show(entry))]


def invoice_findings(
    *,
    log: str,
    number: str,
    index: int,
    row_document: Mapping[str, Any],
    entry: Mapping[str, Any],
    origin: str,
    state: str,
    expected_state: InvoiceState | None,
    stored: Mapping[str, str] | None = None,
) -> list[Finding]:
    """An invoice row against the entry it points at and the state its log's entries give it.

    ``row_document`` is rebuilt from the row and its lines; ``stored`` holds row columns kept
    beside them (the stored totals), each compared with the entry member of the same name.
    """
    found: list[Finding] = []
    same = row_document == entry["invoice"]  # the common case, at C speed
    diffs = [] if same else document_diff(row_document, entry["invoice"])
    for name, value in (stored or {}).items():
        signed = entry["invoice"].get(name, _ABSENT)
        if value != signed and not any(path == name for path, _mine, _theirs in diffs):
            diffs.append((name, value, _show(signed)))
    kind = entry.get("kind")
    expected_origin = _KIND_ORIGIN.get(kind) if isinstance(kind, str) else None
    if expected_origin is not None and origin != expected_origin:
        diffs.append(("origin", origin, str(expected_origin)))
    if diffs:
        fields = "; ".join(f"{path}: {mine} / {theirs}" for path, mine, theirs in diffs)
        params = {"fields": fields, "diff": [{"field": p, "row": a, "entry": b} for p, a, b in diffs]}
        found.append(Finding(C.INVOICE_MISMATCH, log, index=index, number=number, params=params))
    if expected_state is not None and state != expected_state:
        params = {"state": state, "expected": str(expected_state)}
        found.append(Finding(C.INVOICE_STATE_MISMATCH, log, index=index, number=number, params=params))
    return found


def flag_runs(flags: bytes | bytearray, value: int) -> list[tuple[int, int]]:
    """Runs ``[a, b)`` where every ``flags[i] == value``, found at C speed."""
    pattern = re.compile(re.escape(bytes([value])) + b"+")
    return [match.span() for match in pattern.finditer(flags)]
