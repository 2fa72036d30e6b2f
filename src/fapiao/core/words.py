"""The amount in Chinese uppercase (大写金额), as printed in 价税合计（大写）.

Follows 《正确填写票据和结算凭证的基本规定》 (annex to 《支付结算办法》).  Where the rules
allow a choice, this module always takes the same one:

* Currency unit 圆 (the rules allow 元 or 圆); 壹拾 at the head (``10.00`` -> 壹拾圆整),
  as banks write it, so nothing can be prefixed.
* 整 only after 圆 (``1060.00`` -> 壹仟零陆拾圆整).  After 角 no 整 is written, as in the
  rules' own example (¥1,409.50 -> 壹仟肆佰零玖圆伍角); after 分 never.
* Any run of zeros between two written digits becomes one 零 — including a zero 万位 or
  元位 that the rules make optional (¥107,000.53 -> 壹拾万零柒仟圆零伍角叁分,
  ¥1,680.32 -> 壹仟陆佰捌拾圆零叁角贰分, ``100.50`` -> 壹佰圆零伍角): one rule, no gaps
  in which a digit could be added.  A zero 角 before a
  non-zero 分 is 零 as the rules require (¥325.04 -> 叁佰贰拾伍圆零肆分).
* Below one yuan nothing is written for the yuan: ``0.05`` -> 伍分; zero is 零圆整.
* Negative amounts (red invoices) get the prefix 负: ``-1060.00`` -> 负壹仟零陆拾圆整.
"""

from __future__ import annotations

from fapiao.core.errors import InvalidValueError, _
from fapiao.core.money import MAX_MONEY_FEN, format_money

DIGITS = "零壹贰叁肆伍陆柒捌玖"
_SMALL_UNITS = ("", "拾", "佰", "仟")  # within a group of four digits
_GROUP_UNITS = ("", "万", "亿")  # 10^0, 10^4, 10^8; the bound keeps us below 万亿
YUAN, JIAO, FEN, WHOLE, ZERO, NEGATIVE = "圆", "角", "分", "整", "零", "负"


def _yuan_words(yuan: int) -> str:
    """Words for a positive whole number of yuan below 10^12, without the 圆."""
    digits = [int(c) for c in str(yuan)]
    out: list[str] = []
    zero_pending = False  # a zero run seen since the last written digit
    for index, digit in enumerate(digits):
        position = len(digits) - 1 - index  # 0 = 个位
        if digit == 0:
            zero_pending = True
        else:
            if zero_pending:
                out.append(ZERO)
                zero_pending = False
            out.append(DIGITS[digit] + _SMALL_UNITS[position % 4])
        if position % 4 == 0 and position > 0:
            group = digits[max(0, index - 3) : index + 1]
            if any(group):
                out.append(_GROUP_UNITS[position // 4])
    return "".join(out)


def amount_in_words(fen: int) -> str:
    """Chinese uppercase words for an amount of fen, e.g. ``106000`` -> 壹仟零陆拾圆整.

    Raises :class:`InvalidValueError` (``too_large``) beyond :data:`MAX_MONEY_FEN`.
    """
    if abs(fen) > MAX_MONEY_FEN:
        raise InvalidValueError(_("Enter at most {max}."), code="too_large", max=format_money(MAX_MONEY_FEN))
    if fen == 0:
        return ZERO + YUAN + WHOLE
    yuan, cents = divmod(abs(fen), 100)
    jiao, fen_digit = divmod(cents, 10)
    parts: list[str] = [NEGATIVE] if fen < 0 else []
    if yuan:
        parts.append(_yuan_words(yuan) + YUAN)
        if cents == 0:
            parts.append(WHOLE)
        elif yuan % 10 == 0 or jiao == 0:
            # a zero 元位 (optional 零, always written here) or a zero 角 before 分 (required)
            parts.append(ZERO)
    if jiao:
        parts.append(DIGITS[jiao] + JIAO)
    if fen_digit:
        parts.append(DIGITS[fen_digit] + FEN)
    return "".join(parts)
