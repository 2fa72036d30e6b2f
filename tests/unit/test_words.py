"""Amounts in Chinese uppercase (大写) per 《正确填写票据和结算凭证的基本规定》.

Every expected string below was written by hand from the rules (and this module's
documented choices: 圆, 壹拾 at the head, 零 for every zero run between written digits,
整 only after 圆), not produced by the function under test.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fapiao.core.errors import InvalidValueError
from fapiao.core.money import MAX_MONEY_FEN
from fapiao.core.words import amount_in_words

KNOWN = [
    # below one yuan: no 圆 is written
    (0, "零圆整"),
    (1, "壹分"),
    (5, "伍分"),
    (10, "壹角"),
    (20, "贰角"),
    (50, "伍角"),
    (55, "伍角伍分"),
    # 角/分 combinations after whole yuan
    (100, "壹圆整"),
    (101, "壹圆零壹分"),  # zero 角 before 分: 零 is required
    (110, "壹圆壹角"),  # no 整 after 角
    (111, "壹圆壹角壹分"),
    (8880, "捌拾捌圆捌角"),
    (9413, "玖拾肆圆壹角叁分"),
    (26500, "贰佰陆拾伍圆整"),
    # 壹拾 at the head; a zero 元位 before 角/分 gets 零
    (1000, "壹拾圆整"),
    (1050, "壹拾圆零伍角"),
    (1005, "壹拾圆零伍分"),
    (1100, "壹拾壹圆整"),
    (10000, "壹佰圆整"),
    (10050, "壹佰圆零伍角"),
    (10001, "壹佰圆零壹分"),
    (10100, "壹佰零壹圆整"),
    (11000, "壹佰壹拾圆整"),
    # inner zeros at each position of the first group
    (106000, "壹仟零陆拾圆整"),
    (101000, "壹仟零壹拾圆整"),
    (100100, "壹仟零壹圆整"),
    # the rules' own examples (where they allow two forms, the one with 零)
    (140950, "壹仟肆佰零玖圆伍角"),
    (600714, "陆仟零柒圆壹角肆分"),
    (168032, "壹仟陆佰捌拾圆零叁角贰分"),
    (32504, "叁佰贰拾伍圆零肆分"),
    (1640902, "壹万陆仟肆佰零玖圆零贰分"),
    (10700053, "壹拾万零柒仟圆零伍角叁分"),
    # the 万 group
    (1000000, "壹万圆整"),
    (1000100, "壹万零壹圆整"),
    (1010000, "壹万零壹佰圆整"),
    (1100000, "壹万壹仟圆整"),
    (1234567, "壹万贰仟叁佰肆拾伍圆陆角柒分"),
    (10000000, "壹拾万圆整"),
    (10050000, "壹拾万零伍佰圆整"),
    (90000900, "玖拾万零玖圆整"),
    (100000000, "壹佰万圆整"),
    (100000100, "壹佰万零壹圆整"),
    (300000004, "叁佰万圆零肆分"),
    (1000000000, "壹仟万圆整"),
    (1000000010, "壹仟万圆零壹角"),
    (2000000000, "贰仟万圆整"),
    (5000005000, "伍仟万零伍拾圆整"),
    # the 亿 group
    (10000000000, "壹亿圆整"),
    (10001000000, "壹亿零壹万圆整"),
    (10000001000, "壹亿零壹拾圆整"),
    (10100000000, "壹亿零壹佰万圆整"),
    (11000000000, "壹亿壹仟万圆整"),
    (10203040506, "壹亿零贰佰零叁万零肆佰零伍圆零陆分"),
    (100000000000, "壹拾亿圆整"),
    (1000000000000, "壹佰亿圆整"),
    (1000000000001, "壹佰亿圆零壹分"),
    (10000000000000, "壹仟亿圆整"),
    (12345678901234, "壹仟贰佰叁拾肆亿伍仟陆佰柒拾捌万玖仟零壹拾贰圆叁角肆分"),
    (MAX_MONEY_FEN, "玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖圆玖角玖分"),
    # red invoices
    (-106000, "负壹仟零陆拾圆整"),
    (-5, "负伍分"),
    (-10050, "负壹佰圆零伍角"),
    (-10000000000, "负壹亿圆整"),
]


@pytest.mark.parametrize(("fen", "words"), KNOWN)
def test_known_answers(fen: int, words: str) -> None:
    assert amount_in_words(fen) == words


def test_there_are_enough_known_answers() -> None:
    assert len(KNOWN) >= 40
    assert len({fen for fen, _words in KNOWN}) == len(KNOWN)


@pytest.mark.parametrize("fen", [MAX_MONEY_FEN + 1, -MAX_MONEY_FEN - 1, 10**16])
def test_too_large(fen: int) -> None:
    with pytest.raises(InvalidValueError) as caught:
        amount_in_words(fen)
    assert caught.value.code == "too_large"


# --- an independent reader of the words, for the round trip ----------------------------------

DIGIT_VALUES = {c: i for i, c in enumerate("零壹贰叁肆伍陆柒捌玖")}
SMALL = {"拾": 10, "佰": 100, "仟": 1000}
ALLOWED = set("零壹贰叁肆伍陆柒捌玖拾佰仟万亿圆角分整负")


def read_yuan(text: str) -> int:
    yi = wan = section = pending = 0
    for char in text:
        if char in DIGIT_VALUES:
            pending = DIGIT_VALUES[char]
        elif char in SMALL:
            assert pending, f"a unit without a digit in {text}"
            section += pending * SMALL[char]
            pending = 0
        elif char == "万":
            wan, section, pending = section + pending, 0, 0
        elif char == "亿":
            yi, section, pending = section + pending, 0, 0
        else:
            raise AssertionError(f"unexpected {char!r} in {text}")
    return yi * 10**8 + wan * 10**4 + section + pending


def words_to_fen(words: str) -> int:
    match = re.fullmatch(r"(负)?(?:(.+)圆)?(零)?(?:(.)角)?(?:(.)分)?(整)?", words)
    assert match, words
    negative, yuan_text, _zero, jiao, fen, _whole = match.groups()
    value = read_yuan(yuan_text) * 100 if yuan_text else 0
    value += DIGIT_VALUES[jiao] * 10 if jiao else 0
    value += DIGIT_VALUES[fen] if fen else 0
    return -value if negative else value


def test_reader_reads_the_known_answers() -> None:
    for fen, words in KNOWN:
        assert words_to_fen(words) == fen


amounts = st.one_of(
    st.integers(min_value=-MAX_MONEY_FEN, max_value=MAX_MONEY_FEN),
    st.integers(min_value=-(10**6), max_value=10**6),
    # amounts full of zeros exercise the 零 rules
    st.lists(st.sampled_from([0, 0, 0, 1, 5, 9]), min_size=1, max_size=14).map(
        lambda digits: int("".join(map(str, digits)))
    ),
)


@given(amounts)
def test_round_trip(fen: int) -> None:
    assert words_to_fen(amount_in_words(fen)) == fen


@given(amounts)
def test_shape(fen: int) -> None:
    words = amount_in_words(fen)
    assert set(words) <= ALLOWED
    assert words.startswith("负") == (fen < 0)
    assert words[-1] in "整角分"
    assert words.endswith("整") == (fen % 100 == 0)
    assert words.endswith("角") == (abs(fen) % 100 != 0 and abs(fen) % 10 == 0)
    assert "零零" not in words
    for unit in "圆万亿整":
        assert f"零{unit}" not in words or words == "零圆整"
    assert not words.lstrip("负").startswith("零") or fen == 0
    assert words.count("圆") <= 1
