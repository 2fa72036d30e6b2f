"""Invoice rules: the issue request, red letters, state, and the ledger's invoice document."""

from __future__ import annotations

import copy
import json
import time
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import rfc8785
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fapiao.core.choices import Colour, Direction, InvoiceKind, InvoiceState
from fapiao.core.errors import ConflictError, ValidationFailed
from fapiao.core.identifiers import TaxId, TaxIdKind
from fapiao.core.invoice import LIMITS, Buyer, InvoiceDraft, Line, parse_invoice_request
from fapiao.core.invoice_document import invoice_document, sensitive_buyer_fields
from fapiao.core.money import MAX_MONEY_FEN, format_money, line_amount
from fapiao.core.red_letter import (
    FullyRedLetteredError,
    RedLetterItem,
    RedLetterRequest,
    parse_red_letter_request,
    red_letter_lines,
    state_after,
)
from fapiao.core.tax import line_tax, resolve_rate

ON = date(2026, 11, 27)
SIX = resolve_rate("0.06", ON)
RESIDENT = "11010519491231002X"

# The three entries of /work/shared/receipt-example.json, byte for byte.
EXAMPLE_ENTRIES = [
    '{"at":"2026-11-27T01:00:00Z","invoice":{"buyer":{"name":"北京买方贸易有限公司","sealed":null,"tax_id":"91110000MA01XKQ2TQ"},"colour":"blue","direction":"out","issued_on":"2026-11-27","kind":"ordinary","lines":[{"amount":"1000.00","name":"*信息技术服务*软件开发","no":1,"quantity":"1","spec":"","tax":"60.00","tax_code":"3040201000000000000","tax_rate":"0.06","unit":"项","unit_price":"1000.00"}],"number":"26110100000000000001","original_number":null,"remark":"","seller":{"name":"北京示例科技有限公司","tax_id":"91110108MA01ABCD84"},"total_amount":"1000.00","total_tax":"60.00","total_with_tax":"1060.00"},"kind":"issue","log":"91110108MA01ABCD84","ref":null,"seq":0,"v":1}',
    '{"at":"2026-11-27T01:00:05Z","invoice":{"buyer":{"name":"北京买方贸易有限公司","sealed":null,"tax_id":"91110000MA01XKQ2TQ"},"colour":"blue","direction":"out","issued_on":"2026-11-27","kind":"ordinary","lines":[{"amount":"250.00","name":"*信息技术服务*软件开发","no":1,"quantity":"1","spec":"","tax":"15.00","tax_code":"3040201000000000000","tax_rate":"0.06","unit":"项","unit_price":"250.00"}],"number":"26110100000000000002","original_number":null,"remark":"","seller":{"name":"北京示例科技有限公司","tax_id":"91110108MA01ABCD84"},"total_amount":"250.00","total_tax":"15.00","total_with_tax":"265.00"},"kind":"issue","log":"91110108MA01ABCD84","ref":null,"seq":1,"v":1}',
    '{"at":"2026-11-27T01:00:09Z","invoice":{"buyer":{"name":"北京买方贸易有限公司","sealed":null,"tax_id":"91110000MA01XKQ2TQ"},"colour":"blue","direction":"out","issued_on":"2026-11-27","kind":"ordinary","lines":[{"amount":"88.80","name":"*信息技术服务*软件开发","no":1,"quantity":"1","spec":"","tax":"5.33","tax_code":"3040201000000000000","tax_rate":"0.06","unit":"项","unit_price":"88.80"}],"number":"26110100000000000003","original_number":null,"remark":"","seller":{"name":"北京示例科技有限公司","tax_id":"91110108MA01ABCD84"},"total_amount":"88.80","total_tax":"5.33","total_with_tax":"94.13"},"kind":"issue","log":"91110108MA01ABCD84","ref":null,"seq":2,"v":1}',
]


def body(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": "ordinary",
        "buyer": {"name": "北京买方贸易有限公司", "tax_id": "91110000MA01XKQ2TQ"},
        "lines": [
            {
                "name": "*信息技术服务*软件开发",
                "tax_code": "3040201000000000000",
                "unit": "项",
                "quantity": "1",
                "unit_price": "1000.00",
                "tax_rate": "0.06",
            }
        ],
    }
    data.update(changes)
    return data


def with_line(**changes: Any) -> dict[str, Any]:
    data = body()
    data["lines"][0].update(changes)
    return {key: value for key, value in data.items()}


def with_buyer(**changes: Any) -> dict[str, Any]:
    data = body()
    data["buyer"].update(changes)
    return data


def problems(data: object, parse: Any = None) -> list[tuple[str, str]]:
    with pytest.raises(ValidationFailed) as caught:
        (parse or (lambda d: parse_invoice_request(d, on=ON)))(data)
    return [(error.field, error.code) for error in caught.value.errors]


def line(no: int, quantity: str, unit_price: str, code: str = "0.06") -> Line:
    rate = resolve_rate(code, ON)
    amount = line_amount(Decimal(quantity), Decimal(unit_price))
    return Line(
        no,
        f"item {no}",
        "",
        "",
        "个",
        Decimal(quantity),
        Decimal(unit_price),
        rate,
        amount,
        line_tax(amount, rate),
    )


# --- parsing the issue request ------------------------------------------------------------------


def test_parse_the_example_request() -> None:
    draft = parse_invoice_request(body(), on=ON)
    assert draft == InvoiceDraft(
        InvoiceKind.ORDINARY,
        Buyer("北京买方贸易有限公司", TaxId("91110000MA01XKQ2TQ", TaxIdKind.USCC)),
        (
            Line(
                1,
                "*信息技术服务*软件开发",
                "3040201000000000000",
                "",
                "项",
                Decimal("1"),
                Decimal("1000.00"),
                SIX,
                100000,
                6000,
            ),
        ),
        "",
    )
    assert (draft.total_amount, draft.total_tax, draft.total_with_tax) == (100000, 6000, 106000)


def test_parse_keeps_optional_fields_and_client_amounts() -> None:
    data = body(remark="合同号 HT-2026-001\n第二行")
    data["buyer"].update(
        tax_id="", address="北京市海淀区", phone="010-12345678", bank="工商银行", bank_account="0200 0000"
    )
    data["lines"][0].update(amount="1000.00", tax="60.00", spec="v2", tax_code=None)
    data["lines"].append({"name": "培训", "quantity": "3", "unit_price": "0.005", "tax_rate": "exempt"})
    draft = parse_invoice_request(data, on=ON)
    assert draft.buyer == Buyer(
        "北京买方贸易有限公司", None, "北京市海淀区", "010-12345678", "工商银行", "0200 0000"
    )
    assert draft.remark == "合同号 HT-2026-001\n第二行"
    assert draft.lines[0].spec == "v2" and draft.lines[0].tax_code == ""
    second = draft.lines[1]
    assert (second.no, second.amount, second.tax, second.rate.code) == (
        2,
        2,
        0,
        "exempt",
    )  # 0.015 yuan -> 2 fen
    assert draft.total_with_tax == 106002


def test_individual_buyer_on_ordinary_invoice() -> None:
    draft = parse_invoice_request(with_buyer(name="张三", tax_id=RESIDENT), on=ON)
    assert draft.buyer.tax_id == TaxId(RESIDENT, TaxIdKind.RESIDENT_ID)


def test_text_is_trimmed() -> None:
    draft = parse_invoice_request(with_buyer(name="  北京买方贸易有限公司 "), on=ON)
    assert draft.buyer.name == "北京买方贸易有限公司"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ([], [("", "not_an_object")]),
        ("{}", [("", "not_an_object")]),
        (None, [("", "not_an_object")]),
        (body(extra=1), [("extra", "unknown_field")]),
        ({k: v for k, v in body().items() if k != "kind"}, [("kind", "required")]),
        (body(kind="vat"), [("kind", "invalid_choice")]),
        (body(kind=None), [("kind", "required")]),
        ({k: v for k, v in body().items() if k != "buyer"}, [("buyer", "required")]),
        (body(buyer="北京买方"), [("buyer", "not_an_object")]),
        (with_buyer(name=None), [("buyer.name", "required")]),
        (with_buyer(name="   "), [("buyer.name", "blank")]),
        (with_buyer(name=123), [("buyer.name", "not_a_string")]),
        (with_buyer(name="北" * 101), [("buyer.name", "too_long")]),
        (with_buyer(name="a\tb"), [("buyer.name", "bad_character")]),
        (with_buyer(name="a\nb"), [("buyer.name", "bad_character")]),
        (with_buyer(fax="1"), [("buyer.fax", "unknown_field")]),
        (with_buyer(tax_id="91110000MA01XKQ2T0"), [("buyer.tax_id", "bad_checksum")]),
        (with_buyer(tax_id=91110000), [("buyer.tax_id", "not_a_string")]),
        (with_buyer(phone="1" * 31), [("buyer.phone", "too_long")]),
        (with_buyer(address="路" * 201), [("buyer.address", "too_long")]),
        (with_buyer(bank="行" * 101), [("buyer.bank", "too_long")]),
        (with_buyer(bank_account="1" * 51), [("buyer.bank_account", "too_long")]),
        ({k: v for k, v in body().items() if k != "lines"}, [("lines", "required")]),
        (body(lines={}), [("lines", "not_a_list")]),
        (body(lines=[]), [("lines", "empty")]),
        (body(lines=["x"]), [("lines.0", "not_an_object")]),
        (with_line(discount="1"), [("lines.0.discount", "unknown_field")]),
        (with_line(name=""), [("lines.0.name", "blank")]),
        (with_line(name="品" * 101), [("lines.0.name", "too_long")]),
        (with_line(spec="规" * 41), [("lines.0.spec", "too_long")]),
        (with_line(unit="个" * 41), [("lines.0.unit", "too_long")]),
        (with_line(tax_code="304020100000000000"), [("lines.0.tax_code", "bad_length")]),
        (with_line(quantity=1), [("lines.0.quantity", "not_a_string")]),
        (with_line(quantity=1.5), [("lines.0.quantity", "not_a_string")]),
        (with_line(quantity="1e3"), [("lines.0.quantity", "exponent")]),
        (with_line(quantity="0"), [("lines.0.quantity", "not_positive")]),
        (with_line(quantity="-1"), [("lines.0.quantity", "not_positive")]),
        (with_line(quantity="1.123456789"), [("lines.0.quantity", "too_many_decimals")]),
        (with_line(quantity="NaN"), [("lines.0.quantity", "not_a_number")]),
        (with_line(quantity=None), [("lines.0.quantity", "required")]),
        (with_line(unit_price="1,000.00"), [("lines.0.unit_price", "bad_format")]),
        (with_line(unit_price="1000000000000.01"), [("lines.0.unit_price", "too_large")]),
        (with_line(tax_rate="0.17"), [("lines.0.tax_rate", "rate_not_in_force")]),
        (with_line(tax_rate="0.060"), [("lines.0.tax_rate", "unsupported_rate")]),
        (with_line(tax_rate=0.06), [("lines.0.tax_rate", "not_a_string")]),
        (with_line(amount="999.99"), [("lines.0.amount", "amount_mismatch")]),
        (with_line(amount=1000), [("lines.0.amount", "not_a_string")]),
        (with_line(amount=""), [("lines.0.amount", "empty")]),
        (with_line(amount="-1000.00"), [("lines.0.amount", "negative")]),
        (with_line(tax="60.01"), [("lines.0.tax", "tax_mismatch")]),
        (with_line(tax="60.001"), [("lines.0.tax", "too_many_decimals")]),
        (with_line(quantity="0.001", unit_price="0.001"), [("lines.0.amount", "zero_amount")]),
        (with_line(quantity="1000000000000", unit_price="1000"), [("lines.0.amount", "too_large")]),
        (body(remark="备" * 501), [("remark", "too_long")]),
        (body(remark="a\tb"), [("remark", "bad_character")]),
        (body(remark=5), [("remark", "not_a_string")]),
    ],
)
def test_bad_requests(data: object, expected: list[tuple[str, str]]) -> None:
    assert problems(data) == expected


def test_mismatch_messages_carry_the_expected_values() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_invoice_request(with_line(amount="999.99", tax="59.99"), on=ON)
    amount_error, tax_error = caught.value.errors
    assert amount_error.params == {"expected": "1000.00"}
    assert tax_error.params == {"expected": "60.00"}
    assert amount_error.render() == "The amount should be 1000.00."


def test_too_long_names_the_limit() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_invoice_request(with_buyer(name="北" * 101), on=ON)
    assert caught.value.errors[0].params == {"max": LIMITS.buyer_name}


def test_every_problem_is_reported_at_once() -> None:
    data = body(kind="x", extra=True, remark=1)
    data["buyer"] = {"name": "", "tax_id": "123"}
    data["lines"] = [
        {"name": "a", "quantity": "1", "unit_price": "1", "tax_rate": "0.06"},
        {"name": "b", "quantity": 2, "unit_price": "1.001e2", "tax_rate": "6%", "foo": 1},
        {
            "name": "c",
            "quantity": "2",
            "unit_price": "3.5",
            "tax_rate": "0.13",
            "amount": "7.00",
            "tax": "0.90",
        },
    ]
    assert set(problems(data)) == {
        ("extra", "unknown_field"),
        ("kind", "invalid_choice"),
        ("buyer.name", "blank"),
        ("buyer.tax_id", "bad_length"),
        ("lines.1.foo", "unknown_field"),
        ("lines.1.quantity", "not_a_string"),
        ("lines.1.unit_price", "exponent"),
        ("lines.1.tax_rate", "unsupported_rate"),
        ("lines.2.tax", "tax_mismatch"),
        ("remark", "not_a_string"),
    }


def test_too_many_lines_is_reported_once_without_checking_each() -> None:
    data = body(lines=[{"junk": True}] * 10_000)
    started = time.perf_counter()
    assert problems(data) == [("lines", "too_many_lines")]
    assert time.perf_counter() - started < 0.5
    ok = body(lines=body()["lines"] * LIMITS.max_lines)
    assert len(parse_invoice_request(ok, on=ON).lines) == LIMITS.max_lines


def test_total_may_not_exceed_the_bound() -> None:
    half = {"name": "a", "quantity": "1", "unit_price": "500000000000.00", "tax_rate": "0"}
    assert problems(body(lines=[half, half])) == [("lines", "total_too_large")]
    just = {"name": "a", "quantity": "1", "unit_price": "999999999999.99", "tax_rate": "0"}
    assert parse_invoice_request(body(lines=[just]), on=ON).total_with_tax == MAX_MONEY_FEN


def test_special_invoice_rules() -> None:
    assert parse_invoice_request(body(kind="special"), on=ON).kind is InvoiceKind.SPECIAL
    legacy = with_buyer(tax_id="110108D2143569X")
    legacy["kind"] = "special"
    assert parse_invoice_request(legacy, on=ON).buyer.tax_id == TaxId("110108D2143569X", TaxIdKind.LEGACY15)
    no_id = with_buyer(tax_id=None)
    no_id["kind"] = "special"
    assert problems(no_id) == [("buyer.tax_id", "required_for_special")]
    person = with_buyer(name="张三", tax_id=RESIDENT)
    person["kind"] = "special"
    assert problems(person) == [("buyer.tax_id", "individual_on_special")]
    exempt = with_line(tax_rate="exempt")
    exempt["kind"] = "special"
    assert problems(exempt) == [("lines.0.tax_rate", "exempt_on_special")]


def test_rates_follow_the_invoice_date() -> None:
    old = parse_invoice_request(with_line(tax_rate="0.16"), on=date(2018, 6, 1))
    assert old.lines[0].tax == 16000
    assert problems(with_line(tax_rate="0.16")) == [("lines.0.tax_rate", "rate_not_in_force")]


valid_lines = st.fixed_dictionaries(
    {
        "name": st.text(alphabet="商品服务AB12", min_size=1, max_size=20),
        # up to 10^10 yuan a line, so five lines with tax stay under MAX_MONEY_FEN
        "quantity": st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10**4), places=4).map(str),
        "unit_price": st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10**6), places=8).map(str),
        "tax_rate": st.sampled_from(["0.13", "0.09", "0.06", "0", "0.03", "0.015", "0.005", "exempt"]),
    }
)


@given(st.lists(valid_lines, min_size=1, max_size=5))
def test_amounts_and_taxes_are_within_half_a_fen(lines: list[dict[str, str]]) -> None:
    assume(all(Decimal(raw["quantity"]) * Decimal(raw["unit_price"]) >= Decimal("0.005") for raw in lines))
    draft = parse_invoice_request(body(lines=lines), on=ON)
    for raw, parsed in zip(lines, draft.lines, strict=True):
        exact_amount = Decimal(raw["quantity"]) * Decimal(raw["unit_price"]) * 100
        assert abs(parsed.amount - exact_amount) <= Decimal("0.5")
        assert abs(parsed.tax - parsed.amount * parsed.rate.value) <= Decimal("0.5")
    assert draft.total_with_tax == sum(line.amount + line.tax for line in draft.lines)
    # a client that sends the server's own amounts is accepted
    echoed = copy.deepcopy(lines)
    for raw, parsed in zip(echoed, draft.lines, strict=True):
        raw["amount"], raw["tax"] = format_money(parsed.amount), format_money(parsed.tax)
    assert parse_invoice_request(body(lines=echoed), on=ON) == draft


# --- red-letter requests ------------------------------------------------------------------------


def test_parse_red_letter_requests() -> None:
    assert parse_red_letter_request({"full": True}) == RedLetterRequest(True, (), None)
    parsed = parse_red_letter_request(
        {
            "lines": [{"line_no": 2, "quantity": "0.5"}, {"line_no": 1, "quantity": "1"}],
            "confirmation_no": "1101-2026-A1",
        }
    )
    assert parsed == RedLetterRequest(
        False, (RedLetterItem(2, Decimal("0.5")), RedLetterItem(1, Decimal("1"))), "1101-2026-A1"
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ([], [("", "not_an_object")]),
        ({}, [("", "full_or_lines")]),
        ({"full": True, "lines": [{"line_no": 1, "quantity": "1"}]}, [("", "full_or_lines")]),
        ({"full": False}, [("full", "must_be_true")]),
        ({"full": "yes"}, [("full", "not_a_boolean")]),
        ({"full": True, "reason": "x"}, [("reason", "invalid_choice")]),  # 红冲原因: one of four codes
        ({"full": True, "why": "x"}, [("why", "unknown_field")]),
        ({"lines": "1"}, [("lines", "not_a_list")]),
        ({"lines": []}, [("lines", "empty")]),
        ({"lines": [{"line_no": 1, "quantity": "1"}] * 2001}, [("lines", "too_many_lines")]),
        ({"lines": [5]}, [("lines.0", "not_an_object")]),
        ({"lines": [{"line_no": "1", "quantity": "1"}]}, [("lines.0.line_no", "not_an_integer")]),
        ({"lines": [{"line_no": True, "quantity": "1"}]}, [("lines.0.line_no", "not_an_integer")]),
        ({"lines": [{"line_no": 0, "quantity": "1"}]}, [("lines.0.line_no", "not_positive")]),
        ({"lines": [{"quantity": "1"}]}, [("lines.0.line_no", "required")]),
        ({"lines": [{"line_no": 1}]}, [("lines.0.quantity", "required")]),
        ({"lines": [{"line_no": 1, "quantity": "0"}]}, [("lines.0.quantity", "not_positive")]),
        ({"lines": [{"line_no": 1, "quantity": 1}]}, [("lines.0.quantity", "not_a_string")]),
        ({"lines": [{"line_no": 1, "quantity": "1", "amount": "1"}]}, [("lines.0.amount", "unknown_field")]),
        (
            {"lines": [{"line_no": 1, "quantity": "1"}, {"line_no": 1, "quantity": "2"}]},
            [("lines.1.line_no", "duplicate_line")],
        ),
        ({"full": True, "confirmation_no": "红字-1"}, [("confirmation_no", "bad_format")]),
        ({"full": True, "confirmation_no": "1" * 31}, [("confirmation_no", "bad_format")]),
        ({"full": True, "confirmation_no": 12}, [("confirmation_no", "not_a_string")]),
    ],
)
def test_bad_red_letter_requests(data: object, expected: list[tuple[str, str]]) -> None:
    assert problems(data, parse_red_letter_request) == expected


def test_confirmation_no_bounds() -> None:
    assert parse_red_letter_request({"full": True, "confirmation_no": "A" * 30}).confirmation_no == "A" * 30
    assert parse_red_letter_request({"full": True, "confirmation_no": None}).confirmation_no is None


# --- red-letter lines ---------------------------------------------------------------------------

ORIGINAL = (line(1, "1", "1000.00"), line(2, "3", "0.005"), line(3, "10", "88.80", "0.13"))
NOTHING: dict[int, tuple[Decimal, int, int]] = {}


def partial(*items: tuple[int, str]) -> RedLetterRequest:
    return RedLetterRequest(False, tuple(RedLetterItem(no, Decimal(q)) for no, q in items), None)


FULL = RedLetterRequest(True, (), None)


def test_full_red_letter_negates_every_line() -> None:
    red = red_letter_lines(ORIGINAL, NOTHING, FULL)
    assert [(r.no, r.original_no) for r in red] == [(1, 1), (2, 2), (3, 3)]
    for blue, r in zip(ORIGINAL, red, strict=True):
        assert (r.quantity, r.unit_price, r.amount, r.tax) == (
            -blue.quantity,
            blue.unit_price,
            -blue.amount,
            -blue.tax,
        )
        assert (r.name, r.tax_code, r.spec, r.unit, r.rate) == (
            blue.name,
            blue.tax_code,
            blue.spec,
            blue.unit,
            blue.rate,
        )


def test_partial_red_letter_prices_like_issue() -> None:
    (red,) = red_letter_lines(ORIGINAL, NOTHING, partial((3, "2.5")))
    # 2.5 × 88.80 = 222.00; tax 13% = 28.86
    assert (red.no, red.original_no, red.quantity, red.amount, red.tax) == (
        1,
        3,
        Decimal("-2.5"),
        -22200,
        -2886,
    )


def test_the_last_red_letter_takes_exactly_what_remains() -> None:
    # line 2: 3 × 0.005 = 0.015 -> 2 fen; each third rounds 0.005 -> 1 fen
    first = red_letter_lines(ORIGINAL, NOTHING, partial((2, "1")))
    assert first[0].amount == -1
    already = {2: (Decimal("2"), 2, 0)}  # two thirds already took both fen
    (last,) = red_letter_lines(ORIGINAL, already, partial((2, "1")))
    assert (last.quantity, last.amount, last.tax) == (Decimal("-1"), 0, 0)


def test_partial_amount_is_capped_at_what_remains() -> None:
    already = {2: (Decimal("1"), 2, 0)}
    with pytest.raises(ValidationFailed) as caught:
        red_letter_lines(ORIGINAL, already, partial((2, "1")))  # 1 fen computed, 0 remains
    assert [(e.field, e.code) for e in caught.value.errors] == [("lines.0.quantity", "zero_amount")]


def test_red_letter_problems() -> None:
    with pytest.raises(ValidationFailed) as caught:
        red_letter_lines(
            ORIGINAL, {1: (Decimal("0.25"), 25000, 1500)}, partial((1, "0.8"), (9, "1"), (3, "10.00000001"))
        )
    errors = [(e.field, e.code, e.params) for e in caught.value.errors]
    assert errors == [
        ("lines.0.quantity", "exceeds_remaining", {"remaining": "0.75"}),
        ("lines.1.line_no", "unknown_line", {"line_no": 9}),
        ("lines.2.quantity", "exceeds_remaining", {"remaining": "10"}),
    ]


def test_exhausted_line_reports_zero_remaining() -> None:
    with pytest.raises(ValidationFailed) as caught:
        red_letter_lines(ORIGINAL, {1: (Decimal("1"), 100000, 6000)}, partial((1, "0.1")))
    assert caught.value.errors[0].params == {"remaining": "0"}


def test_full_skips_exhausted_lines_and_renumbers() -> None:
    already = {1: (Decimal("1"), 100000, 6000), 3: (Decimal("4"), 35520, 4618)}
    red = red_letter_lines(ORIGINAL, already, FULL)
    assert [(r.no, r.original_no, r.quantity, r.amount, r.tax) for r in red] == [
        (1, 2, Decimal("-3"), -2, 0),
        (2, 3, Decimal("-6"), -(88800 - 35520), -(11544 - 4618)),
    ]


def test_fully_red_lettered_invoice_conflicts() -> None:
    everything = {b.no: (b.quantity, b.amount, b.tax) for b in ORIGINAL}
    for request in (FULL, partial((1, "1"))):
        with pytest.raises(FullyRedLetteredError) as caught:
            red_letter_lines(ORIGINAL, everything, request)
        assert isinstance(caught.value, ConflictError)
        assert caught.value.status == 409
        assert str(caught.value) == "This invoice has already been fully red-lettered."


def test_state_after() -> None:
    assert state_after(ORIGINAL, NOTHING) is InvoiceState.NORMAL
    assert state_after(ORIGINAL, {2: (Decimal("1"), 1, 0)}) is InvoiceState.PARTLY_RED
    everything = {b.no: (b.quantity, b.amount, b.tax) for b in ORIGINAL}
    assert state_after(ORIGINAL, everything) is InvoiceState.FULLY_RED
    almost = {**everything, 3: (Decimal("9.99999999"), 88800, 11544)}
    assert state_after(ORIGINAL, almost) is InvoiceState.PARTLY_RED


ORDER = [InvoiceState.NORMAL, InvoiceState.PARTLY_RED, InvoiceState.FULLY_RED]

blue_lines = st.lists(
    st.tuples(
        st.decimals(min_value=Decimal("0.001"), max_value=Decimal(1000), places=3),
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10000), places=4),
        st.sampled_from(["0.13", "0.09", "0.06", "0.03", "0.005", "exempt"]),
    ),
    min_size=1,
    max_size=4,
).map(lambda specs: tuple(line(no, str(q), str(p), r) for no, (q, p, r) in enumerate(specs, 1)))


@settings(max_examples=200, deadline=None)
@given(blue_lines.filter(lambda lines: all(b.amount > 0 for b in lines)), st.data())
def test_random_partial_red_letters_sum_exactly_to_the_original(
    original: tuple[Line, ...], data: st.DataObject
) -> None:
    already: dict[int, tuple[Decimal, int, int]] = {}
    state = state_after(original, already)
    for _step in range(data.draw(st.integers(min_value=0, max_value=8), label="steps")):
        open_lines = [b for b in original if already.get(b.no, (Decimal(0), 0, 0))[0] < b.quantity]
        if not open_lines:
            break
        target = data.draw(st.sampled_from(open_lines), label="line")
        remaining = target.quantity - already.get(target.no, (Decimal(0), 0, 0))[0]
        share = data.draw(st.integers(min_value=1, max_value=1000), label="per-mille")
        quantity = max((remaining * share / 1000).quantize(Decimal("0.00000001")), Decimal("0.00000001"))
        try:
            (red,) = red_letter_lines(original, already, partial((target.no, str(min(quantity, remaining)))))
        except ValidationFailed as failed:
            assert [e.code for e in failed.errors] == ["zero_amount"]
            continue
        q, a, t = already.get(target.no, (Decimal(0), 0, 0))
        already[target.no] = (q - red.quantity, a - red.amount, t - red.tax)
        assert red.amount <= 0 and red.tax <= 0 and red.quantity < 0
        new_state = state_after(original, already)
        assert ORDER.index(new_state) >= ORDER.index(state)
        state = new_state
        for blue in original:  # never more than the original
            q, a, t = already.get(blue.no, (Decimal(0), 0, 0))
            assert q <= blue.quantity and a <= blue.amount and t <= blue.tax
    if state is not InvoiceState.FULLY_RED:
        for red in red_letter_lines(original, already, FULL):
            assert red.original_no is not None
            q, a, t = already.get(red.original_no, (Decimal(0), 0, 0))
            already[red.original_no] = (q - red.quantity, a - red.amount, t - red.tax)
    assert already == {b.no: (b.quantity, b.amount, b.tax) for b in original}
    assert state_after(original, already) is InvoiceState.FULLY_RED


taken = st.tuples(
    st.decimals(min_value=0, max_value=20, places=2),
    st.integers(min_value=0, max_value=200000),
    st.integers(0, 20000),
)


@given(st.lists(st.tuples(st.integers(1, 3), taken), max_size=6))
def test_state_after_is_monotone(steps: list[tuple[int, tuple[Decimal, int, int]]]) -> None:
    already: dict[int, tuple[Decimal, int, int]] = {}
    state = state_after(ORIGINAL, already)
    for no, (q, a, t) in steps:
        old = already.get(no, (Decimal(0), 0, 0))
        already[no] = (old[0] + q, old[1] + a, old[2] + t)
        new_state = state_after(ORIGINAL, already)
        assert ORDER.index(new_state) >= ORDER.index(state)
        state = new_state


# --- the ledger's invoice document ----------------------------------------------------------------


@pytest.mark.parametrize("entry", EXAMPLE_ENTRIES)
def test_document_equals_the_receipt_example(entry: str) -> None:
    expected = json.loads(entry)["invoice"]
    request = body()
    request["lines"][0]["unit_price"] = expected["lines"][0]["unit_price"]
    draft = parse_invoice_request(request, on=ON)
    document = invoice_document(
        number=expected["number"],
        kind=draft.kind,
        colour=Colour.BLUE,
        direction=Direction.OUT,
        issued_on=ON,
        seller_name="北京示例科技有限公司",
        seller_tax_id="91110108MA01ABCD84",
        buyer=draft.buyer,
        sealed=None,
        lines=draft.lines,
        original_number=None,
        remark=draft.remark,
    )
    assert document == expected
    wrapped = json.loads(entry) | {"invoice": document}
    assert rfc8785.dumps(wrapped) == entry.encode()


def document_for(
    buyer: Buyer, sealed: str | None, lines: tuple[Line, ...] = ORIGINAL, **extra: Any
) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "number": "26110100000000000009",
        "kind": InvoiceKind.ORDINARY,
        "colour": Colour.BLUE,
        "direction": Direction.OUT,
        "issued_on": ON,
        "seller_name": "北京示例科技有限公司",
        "seller_tax_id": "91110108MA01ABCD84",
        "buyer": buyer,
        "sealed": sealed,
        "lines": lines,
        "original_number": None,
        "remark": "",
    }
    return invoice_document(**(arguments | extra))


SEAL = "ab" * 32


def test_individual_buyer_is_sealed_not_published() -> None:
    person = Buyer("张三", TaxId(RESIDENT, TaxIdKind.RESIDENT_ID), phone="13812345678")
    assert sensitive_buyer_fields(person) == {
        "address": "", "bank": "", "bank_account": "", "phone": "13812345678", "tax_id": RESIDENT,
    }  # fmt: skip
    document = document_for(person, SEAL)
    assert document["buyer"] == {"name": "张三", "sealed": SEAL, "tax_id": None}
    assert RESIDENT not in json.dumps(document, ensure_ascii=False)
    assert "13812345678" not in json.dumps(document, ensure_ascii=False)
    with pytest.raises(ValueError):
        document_for(person, None)
    with pytest.raises(ValueError):
        document_for(person, "AB" * 32)


def test_organisation_buyer_fields() -> None:
    plain = Buyer("北京买方贸易有限公司", TaxId("91110000MA01XKQ2TQ", TaxIdKind.USCC))
    assert sensitive_buyer_fields(plain) == {}
    assert sensitive_buyer_fields(Buyer("无税号个人", None)) == {}
    with_bank = Buyer("北京买方贸易有限公司", TaxId("91110000MA01XKQ2TQ", TaxIdKind.USCC), bank="工商银行")
    assert sensitive_buyer_fields(with_bank)["tax_id"] is None
    assert document_for(with_bank, SEAL)["buyer"]["tax_id"] == "91110000MA01XKQ2TQ"


def test_red_invoice_document() -> None:
    buyer = Buyer("北京买方贸易有限公司", TaxId("91110000MA01XKQ2TQ", TaxIdKind.USCC))
    red = red_letter_lines(ORIGINAL, NOTHING, partial((3, "2.5")))
    document = document_for(
        buyer,
        None,
        red,
        colour=Colour.RED,
        original_number="26110100000000000009",
        number="26110100000000000010",
    )
    assert document["colour"] == "red"
    assert document["original_number"] == "26110100000000000009"
    assert document["lines"] == [
        {
            "amount": "-222.00", "name": "item 3", "no": 1, "original_no": 3, "quantity": "-2.5", "spec": "",
            "tax": "-28.86", "tax_code": "", "tax_rate": "0.13", "unit": "个", "unit_price": "88.80",
        }
    ]  # fmt: skip
    assert (document["total_amount"], document["total_tax"], document["total_with_tax"]) == (
        "-222.00",
        "-28.86",
        "-250.86",
    )
