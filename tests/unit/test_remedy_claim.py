"""What a remedy may write, in the core: the claim's invoice, what an incomplete claim lacks, and
where a written invoice differs from its claim (issue 13, finding 1).  No database."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from fapiao.core.case_claim import (
    ClaimIncompleteError,
    RedClaimNotReissuableError,
    claimed_invoice_body,
    parse_claim,
)
from fapiao.core.choices import Colour, Direction, InvoiceKind
from fapiao.core.claims import remedy_differences
from fapiao.core.errors import ValidationFailed
from fapiao.core.invoice import parse_invoice_request
from fapiao.core.invoice_document import invoice_document

TODAY = date(2026, 11, 20)
BASE: dict[str, Any] = {
    "number": "011001900111-00000106",
    "issued_on": "2026-11-03",
    "buyer": {"name": "北京买方贸易有限公司", "tax_id": "91110000MA01XKQ2TQ"},
    "total_with_tax": "106.00",
    "narrative": "上传中断。",
}
LINE = {"name": "*信息技术服务*软件开发", "quantity": "2", "unit_price": "50.00", "tax_rate": "0.06"}


def claim(**extra: Any) -> Any:
    return parse_claim({**BASE, **extra}, today=TODAY)


def missing(body: dict[str, Any]) -> set[str]:
    with pytest.raises(ClaimIncompleteError) as raised:
        claimed_invoice_body(claim(**body), summary_line="详见补救申请BJ-2026-000001")
    assert raised.value.status == 409
    return {error.field for error in raised.value.errors}


def test_a_claim_by_its_totals_is_one_line_at_the_one_rate_they_fit() -> None:
    body = claimed_invoice_body(
        claim(kind="ordinary", total_amount="100.00", total_tax="6.00"),
        summary_line="详见补救申请BJ-2026-000001",
    )
    assert body == {
        "kind": "ordinary",
        "buyer": {"name": "北京买方贸易有限公司", "tax_id": "91110000MA01XKQ2TQ"},
        "lines": [
            {
                "name": "详见补救申请BJ-2026-000001",
                "quantity": "1",
                "unit_price": "100.00",
                "tax_rate": "0.06",
            }
        ],
        "remark": "",
    }
    assert parse_invoice_request(body, on=date(2026, 11, 3)).total_with_tax == 10600


def test_a_claim_with_lines_is_written_line_by_line() -> None:
    parsed = claim(kind="special", total_amount="100.00", total_tax="6.00", lines=[LINE])
    body = claimed_invoice_body(parsed, summary_line="-")
    assert [line["name"] for line in body["lines"]] == [LINE["name"]] and body["kind"] == "special"


@pytest.mark.parametrize(
    ("extra", "lacks"),
    [
        ({}, {"claim.kind", "claim.lines"}),
        ({"kind": "ordinary"}, {"claim.lines"}),
        ({"total_amount": "100.00", "total_tax": "6.00"}, {"claim.kind"}),
        # ¥1.00 and ¥0.01 of tax fit 1% and 0.5% (and more): the claim must say which.
        (
            {"kind": "ordinary", "total_with_tax": "1.01", "total_amount": "1.00", "total_tax": "0.01"},
            {"claim.tax_rate"},
        ),
    ],
)
def test_an_incomplete_claim_says_what_it_lacks(extra: dict[str, Any], lacks: set[str]) -> None:
    assert missing(extra) == lacks


def test_a_claimed_rate_settles_what_the_totals_leave_open() -> None:
    parsed = claim(
        kind="ordinary", total_with_tax="1.01", total_amount="1.00", total_tax="0.01", tax_rate="0.01"
    )
    assert claimed_invoice_body(parsed, summary_line="-")["lines"][0]["tax_rate"] == "0.01"


@pytest.mark.parametrize(
    ("extra", "field", "code"),
    [
        ({"lines": [LINE], "total_with_tax": "107.00"}, "total_with_tax", "lines_disagree"),
        (
            {"tax_rate": "0.09", "total_amount": "100.00", "total_tax": "6.00"},
            "total_tax",
            "tax_disagrees_with_rate",
        ),
        ({"tax_rate": "0.06"}, "tax_rate", "rate_needs_totals"),
        ({"tax_rate": "0.06", "lines": [LINE]}, "tax_rate", "rate_with_lines"),
        ({"lines": [{**LINE, "tax_rate": "0.07"}]}, "lines.0.tax_rate", "unsupported_rate"),
        ({"total_with_tax": "0.00"}, "total_with_tax", "zero_amount"),
        ({"total_with_tax": "-106.00", "total_amount": "100.00", "total_tax": "-206.00"}, "total_amount",
         "sign_differs"),
        ({"total_with_tax": "106.00", "total_amount": "-100.00", "total_tax": "206.00"}, "total_amount",
         "sign_differs"),
    ],
)  # fmt: skip
def test_a_claim_must_add_up(extra: dict[str, Any], field: str, code: str) -> None:
    with pytest.raises(ValidationFailed) as raised:
        claim(**extra)
    assert (field, code) in {(error.field, error.code) for error in raised.value.errors}


def test_a_red_invoice_is_claimed_with_its_negative_amounts_and_is_never_reissued() -> None:
    red = claim(total_with_tax="-106.00", total_amount="-100.00", total_tax="-6.00", kind="ordinary")
    assert (red.total_with_tax, red.total_amount, red.total_tax) == (-10600, -10000, -600)
    with pytest.raises(RedClaimNotReissuableError) as raised:
        claimed_invoice_body(red, summary_line="详见补救申请BJ-2026-000001")
    assert raised.value.status == 409


# --- what was written, against the claim -------------------------------------------------------------


def written(**changes: Any) -> dict[str, Any]:
    draft = parse_invoice_request(
        {
            "kind": "ordinary",
            "buyer": {"name": "北京买方贸易有限公司", "tax_id": "91110000MA01XKQ2TQ"},
            "lines": [LINE],
        },
        on=date(2026, 11, 3),
    )
    document = invoice_document(
        number="011001900111-00000106",
        kind=InvoiceKind.ORDINARY,
        colour=Colour.BLUE,
        direction=Direction.OUT,
        issued_on=date(2026, 11, 3),
        seller_name="北京示例科技有限公司",
        seller_tax_id="91110108MA01ABCD84",
        buyer=draft.buyer,
        sealed=None,
        lines=draft.lines,
        original_number=None,
        remark="",
    )
    return {**document, **changes}


CLAIMED: dict[str, Any] = {
    "number": "011001900111-00000106",
    "issued_on": "2026-11-03",
    "seller_tax_id": "91110108MA01ABCD84",
    "buyer_name": "北京买方贸易有限公司",
    "buyer_tax_id": "91110000MA01XKQ2TQ",
    "total_with_tax_fen": 10600,
    "total_amount_fen": 10000,
    "total_tax_fen": 600,
    "kind": "ordinary",
    "lines": [{**LINE, "tax_code": "", "spec": "", "unit": ""}],
    "tax_rate": "",
}


def test_the_claim_written_as_claimed_does_not_differ() -> None:
    assert remedy_differences(CLAIMED, written(), restore=True) == []


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"total_with_tax": "100000000.00"}, ["total_with_tax_fen"]),
        ({"issued_on": "2020-01-02"}, ["issued_on"]),
        ({"buyer": {"name": "北京空壳贸易有限公司", "sealed": None, "tax_id": None}}, ["buyer_name"]),
        ({"kind": "special"}, ["kind"]),
        ({"seller": {"name": "别家", "tax_id": "91110105MA01EFGH56"}}, ["seller_tax_id"]),
        ({"lines": [{**written()["lines"][0], "unit_price": "94339622.64"}]}, ["lines"]),
    ],
)
def test_what_differs_from_the_claim_is_named(changes: dict[str, Any], fields: list[str]) -> None:
    assert [d.field for d in remedy_differences(CLAIMED, written(**changes), restore=True)] == fields


def test_a_reissue_keeps_its_own_number_and_date() -> None:
    reissued = written(number="26110100000000000009", issued_on="2026-11-20")
    assert remedy_differences(CLAIMED, reissued, restore=False) == []
    assert {d.field for d in remedy_differences(CLAIMED, reissued, restore=True)} == {"number", "issued_on"}


def test_a_claimed_rate_is_checked_on_every_line() -> None:
    by_totals = {**CLAIMED, "lines": [], "tax_rate": "0.09"}
    assert [d.field for d in remedy_differences(by_totals, written(), restore=True)] == ["tax_rate"]
