"""The error classes' default messages reach the translation catalogue."""

from __future__ import annotations

from fapiao.web.msgids import TARGET, default_messages, render


def test_generated_error_messages_are_up_to_date():
    assert TARGET.read_text(encoding="utf-8") == render(), "run `fapiao error_msgids`, then makemessages"


def test_every_default_message_is_a_plain_sentence():
    for message in default_messages():
        assert "\n" not in message, f"keep error docstrings to one line: {message!r}"
