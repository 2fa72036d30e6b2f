"""The zh-Hans translation catalogue: complete, checked, and in step with the code.

zh-Hans is the default language, so an untranslated, fuzzy or stale entry shows English (or a
wrong message) to a Beijing clerk.  These tests read ``locale/zh_Hans/LC_MESSAGES/django.po``
with Babel and check that

* every entry has a translation, none is fuzzy, and the header is not fuzzy (``pybabel
  compile`` skips a catalogue whose header is fuzzy, so nothing at all would be translated);
* each translation keeps exactly the ``{name}`` and ``%(name)s`` placeholders of its msgid;
* each translation is Chinese (has CJK characters) unless its msgid is in
  :data:`TECHNICAL_MSGIDS`, and uses full-width punctuation next to Chinese text;
* every string the code marks for translation is in the catalogue.

When a string is missing, regenerate the catalogue (GNU gettext needed), translate the new
entries, then compile (Babel only); the commands are in :data:`HOW_TO_FIX`.
"""

from __future__ import annotations

import ast
import re
import string
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

import fapiao

PACKAGE_DIR = Path(fapiao.__file__).resolve().parent
LOCALE_DIR = PACKAGE_DIR / "locale"
ZH_HANS_PO = LOCALE_DIR / "zh_Hans" / "LC_MESSAGES" / "django.po"

HOW_TO_FIX = (
    "Regenerate the catalogue, translate the new entries in "
    "src/fapiao/locale/zh_Hans/LC_MESSAGES/django.po (no '#, fuzzy' left), then compile:\n"
    "    cd src/fapiao && FAPIAO_VAR_DIR=/tmp/fv-dev ../../.venv/bin/fapiao makemessages "
    "-l zh_Hans -l en --no-obsolete\n"
    "    cd ../.. && .venv/bin/pybabel compile -d src/fapiao/locale -D django"
)

#: The translation functions the code uses.  ``_`` is both Django's ``gettext_lazy as _`` (models)
#: and :func:`fapiao.core.errors._` (a no-op marker, translated in the web layer).
KEYWORDS: dict[str, tuple[int | tuple[int, str], ...] | None] = {
    "_": None,
    "gettext": None,
    "gettext_lazy": None,
    "gettext_noop": None,
    "ngettext": (1, 2),
    "ngettext_lazy": (1, 2),
    "pgettext": ((1, "c"), 2),
    "pgettext_lazy": ((1, "c"), 2),
    "npgettext": ((1, "c"), 2, 3),
    "npgettext_lazy": ((1, "c"), 2, 3),
}

#: msgids with no words to translate (e.g. a bare format such as ``"{start}–{end}"``); only
#: these may have a translation without Chinese characters.  Add to it deliberately.
TECHNICAL_MSGIDS: frozenset[str] = frozenset()

TEMPLATE_SUFFIXES = (".html", ".txt")  # what `makemessages -d django` reads besides .py

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
PERCENT_NAMED = re.compile(r"%\(([^)]*)\)[-#0 +]*(?:\d+|\*)?(?:\.(?:\d+|\*))?[diouxXeEfFgGcrsa]")
PERCENT_POSITIONAL = re.compile(r"%(?!\()[-#0 +]*(?:\d+|\*)?(?:\.(?:\d+|\*))?[diouxXeEfFgGcrsa]")
#: ASCII punctuation directly next to a Chinese character should be full-width (，。：；（）！？).
HALF_WIDTH_NEXT_TO_CJK = re.compile(
    r"(?<=[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff])[,.;:()!?]"
    r"|[,;:()!?](?=[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff])"
)

MessageKey = tuple[str, str | None]  # (msgid, msgctxt)


# --- Reading the catalogue ----------------------------------------------------------------------


@cache
def zh_hans() -> Catalog:
    with ZH_HANS_PO.open("rb") as po:
        return read_po(po, locale="zh_Hans")


def entries() -> list[Message]:
    """The catalogue's messages, without the header."""
    return [message for message in zh_hans() if message.id]


def ids(message: Message) -> tuple[str, ...]:
    return tuple(message.id) if isinstance(message.id, (list, tuple)) else (message.id,)


def strings(message: Message) -> tuple[str, ...]:
    if isinstance(message.string, (list, tuple)):
        return tuple(message.string)
    return (message.string or "",)


def label(message: Message) -> str:
    where = " ".join(f"{path}:{line}" for path, line in message.locations[:3])
    context = f" [context {message.context!r}]" if message.context else ""
    return f"{ids(message)[0]!r}{context} ({where or 'no location'})"


def key(message: Message) -> MessageKey:
    return ids(message)[0], message.context or None


# --- Placeholders --------------------------------------------------------------------------------


def brace_placeholders(text: str) -> set[str]:
    """``{name}``, ``{name!r}``, ``{0:>3}`` … as written; ``{{`` and ``}}`` are literal braces."""
    try:
        fields = [
            (name, conversion, spec)
            for _literal, name, spec, conversion in string.Formatter().parse(text)
            if name is not None
        ]
    except ValueError:  # a lone brace: not a format string, but still compare what looks like one
        return set(re.findall(r"(?<!\{)\{[^{}]*\}(?!\})", text))
    return {"{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
            for name, conv, spec in fields}  # fmt: skip


def placeholders(*texts: str, python_format: bool) -> dict[str, object]:
    """The placeholders of a message; for a plural msgid, those of its forms together."""
    found: dict[str, object] = {
        "brace": set().union(*(brace_placeholders(text) for text in texts)),
        "percent-named": {
            match.group(0) for text in texts for match in PERCENT_NAMED.finditer(text.replace("%%", ""))
        },
    }
    if python_format:  # bare %s / %d only mean something in a python-format message
        found["percent-positional"] = sorted(PERCENT_POSITIONAL.findall(texts[-1].replace("%%", "")))
    return found


def placeholder_problems(message: Message) -> list[str]:
    python_format = "python-format" in message.flags
    expected = placeholders(*ids(message), python_format=python_format)
    problems = []
    for form, translation in enumerate(strings(message)):
        if not translation:
            continue
        got = placeholders(translation, python_format=python_format)
        if got != expected:
            which = f" (plural form {form})" if len(strings(message)) > 1 else ""
            problems.append(f"{label(message)}{which}: msgid has {expected}, msgstr has {got}")
    return problems


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Use at most {max} characters.", {"{max}"}),
        ("{a!r} and {b:>3} but not {{c}}", {"{a!r}", "{b:>3}"}),
        ("Send a JSON object.", set()),
    ],
)
def test_brace_placeholders(text: str, found: set[str]) -> None:
    assert brace_placeholders(text) == found


def test_percent_placeholders() -> None:
    found = placeholders("%(count)d of %(total)s, 100%% sure, %s", python_format=True)
    assert found == {
        "brace": set(),
        "percent-named": {"%(count)d", "%(total)s"},
        "percent-positional": ["%s"],
    }


# --- The catalogue itself ------------------------------------------------------------------------


def test_catalogue_exists_and_has_entries() -> None:
    assert ZH_HANS_PO.is_file(), f"{ZH_HANS_PO} is missing.\n{HOW_TO_FIX}"
    assert entries(), f"{ZH_HANS_PO} has no messages.\n{HOW_TO_FIX}"


def test_header_is_not_fuzzy() -> None:
    # `pybabel compile` silently skips a catalogue whose header is fuzzy: no zh-Hans at all.
    assert not zh_hans().fuzzy, (
        f"{ZH_HANS_PO}: remove '#, fuzzy' above the header (msgid \"\"); "
        "pybabel compile skips a fuzzy catalogue entirely."
    )


def test_plural_forms_are_chinese() -> None:
    assert zh_hans().num_plurals == 1, "Chinese has one plural form: 'nplurals=1; plural=0;'"


def test_every_message_is_translated() -> None:
    untranslated = [label(message) for message in entries() if not all(s.strip() for s in strings(message))]
    assert not untranslated, (
        f"{len(untranslated)} message(s) without a zh-Hans translation:\n  "
        + "\n  ".join(untranslated)
        + f"\n{HOW_TO_FIX}"
    )


def test_no_message_is_fuzzy() -> None:
    fuzzy = [label(message) for message in entries() if message.fuzzy]
    assert not fuzzy, (
        f"{len(fuzzy)} fuzzy message(s): gettext guessed these from similar msgids and they are "
        "not used until checked.  Check each translation, then delete its '#, fuzzy' "
        "(and '#| msgid' line):\n  " + "\n  ".join(fuzzy)
    )


def test_placeholders_are_kept() -> None:
    problems = [problem for message in entries() for problem in placeholder_problems(message)]
    assert not problems, "Translations must keep every placeholder exactly:\n  " + "\n  ".join(problems)


def test_translations_are_chinese() -> None:
    not_chinese = [
        label(message)
        for message in entries()
        if ids(message)[0] not in TECHNICAL_MSGIDS and any(s and not CJK.search(s) for s in strings(message))
    ]
    assert not not_chinese, (
        "These translations have no Chinese characters (if a msgid truly has no words, add it to "
        "TECHNICAL_MSGIDS in this file):\n  " + "\n  ".join(not_chinese)
    )


def test_punctuation_next_to_chinese_is_full_width() -> None:
    half_width = [
        f"{label(message)}: {s!r}"
        for message in entries()
        for s in strings(message)
        if HALF_WIDTH_NEXT_TO_CJK.search(s)
    ]
    assert not half_width, (
        "Use full-width punctuation (，。：；（）！？) next to Chinese text:\n  " + "\n  ".join(half_width)
    )


def test_catalogue_passes_babel_checks() -> None:
    problems = [
        f"{label(message)}: {error}"
        for message, errors in zh_hans().check()
        for error in errors
    ]  # fmt: skip
    assert not problems, "\n".join(problems)


# --- The catalogue is in step with the code -------------------------------------------------------

VARIABLE = re.compile(r"\{\{\s*(.*?)\s*\}\}", re.DOTALL)
QUOTED = r"""(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"""
INLINE_TRANSLATE = re.compile(
    r"\{%\s*trans(?:late)?\s+(" + QUOTED + r")(.*?)%\}", re.DOTALL
)  # fmt: skip
BLOCK_TRANSLATE = re.compile(
    r"\{%\s*blocktrans(?:late)?\b(.*?)%\}(.*?)\{%\s*endblocktrans(?:late)?\s*%\}", re.DOTALL
)
PLURAL_TAG = re.compile(r"\{%\s*plural\s*%\}")
CONTEXT_OPTION = re.compile(r"\bcontext\s+(" + QUOTED + r")")
CONSTANT = re.compile(r"\b_\((" + QUOTED + r")\)")  # {{ _("text") }} and tag arguments
COMMENTS = re.compile(r"\{%\s*comment\b.*?%\}.*?\{%\s*endcomment\s*%\}|\{#.*?#\}", re.DOTALL)
ONE_PERCENT = re.compile(r"(?<!%)%(?!%)")


def _unquote(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _block_message(body: str, *, trimmed: bool) -> str:
    """A ``{% blocktranslate %}`` body as ``makemessages`` writes it: ``{{ x }}`` becomes ``%(x)s``."""
    pieces, position = [], 0
    for match in VARIABLE.finditer(body):
        pieces.append(body[position : match.start()].replace("%", "%%"))
        pieces.append(f"%({match.group(1).strip()})s")
        position = match.end()
    pieces.append(body[position:].replace("%", "%%"))
    message = "".join(pieces)
    return re.sub(r"\s*\n\s*", " ", message.strip()) if trimmed else message


def template_messages(text: str) -> Iterator[tuple[int, str, str | None]]:
    """(line, msgid, context) for the translation tags of one Django template (a simple regex
    reading, not Django's parser: enough for the tags this project writes)."""
    text = COMMENTS.sub(lambda match: "\n" * match.group(0).count("\n"), text)
    for match in INLINE_TRANSLATE.finditer(text):
        context = CONTEXT_OPTION.search(match.group(2))
        yield (
            _line(text, match.start()),
            ONE_PERCENT.sub("%%", _unquote(match.group(1))),
            _unquote(context.group(1)) if context else None,
        )
    for match in BLOCK_TRANSLATE.finditer(text):
        options, body = match.group(1), match.group(2)
        singular = PLURAL_TAG.split(body)[0]
        context = CONTEXT_OPTION.search(options)
        trimmed = re.search(r"\btrimmed\b", options) is not None
        yield (
            _line(text, match.start()),
            _block_message(singular, trimmed=trimmed),
            _unquote(context.group(1)) if context else None,
        )
    for match in CONSTANT.finditer(text):
        yield _line(text, match.start()), _unquote(match.group(1)), None


def test_template_reading() -> None:
    sample = """
    {% load i18n %}
    <h1>{% translate "Invoices" %}</h1>
    <p>{% trans 'May' context "month" %}</p>
    {% comment %}{% translate "Not me" %}{% endcomment %}{# {% translate "Nor me" %} #}
    {% blocktranslate trimmed with n=invoice.number %}
        Invoice {{ n }} is
        6% off.
    {% endblocktranslate %}
    {% blocktrans count counter=items|length %}One line{% plural %}{{ counter }} lines{% endblocktrans %}
    {% some_tag _("Marked") %}
    """
    found = {(msgid, context) for _line, msgid, context in template_messages(sample)}
    assert found == {
        ("Invoices", None),
        ("May", "month"),
        ("Invoice %(n)s is 6%% off.", None),
        ("One line", None),
        ("Marked", None),
    }


def _wanted_directory(path: str) -> bool:
    name = Path(path).name
    return not name.startswith(".") and name not in {"__pycache__", "locale"}


def code_messages() -> dict[MessageKey, list[str]]:
    """Every msgid the code marks for translation, with where it is."""
    found: dict[MessageKey, list[str]] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
        str(PACKAGE_DIR),
        method_map=[("**.py", "python")],
        keywords=KEYWORDS,
        comment_tags=(),
        directory_filter=_wanted_directory,
    ):
        msgid = message[0] if isinstance(message, (list, tuple)) else message
        if msgid:
            found.setdefault((msgid, context or None), []).append(f"{filename}:{lineno}")
    for path in sorted(PACKAGE_DIR.rglob("*")):
        relative = path.relative_to(PACKAGE_DIR)
        if path.suffix not in TEMPLATE_SUFFIXES or not all(map(_wanted_directory, relative.parts[:-1])):
            continue
        for lineno, msgid, context in template_messages(path.read_text(encoding="utf-8")):
            found.setdefault((msgid, context), []).append(f"{relative}:{lineno}")
    return found


def test_code_marks_some_messages() -> None:
    # Guards the extraction itself: if it found nothing, the next test would pass vacuously.
    assert ("No such invoice.", None) in code_messages()


def test_every_string_in_the_code_is_in_the_catalogue() -> None:
    catalogue = {key(message) for message in entries()}
    missing = sorted(
        (where[0], msgid, context)
        for (msgid, context), where in code_messages().items()
        if (msgid, context) not in catalogue
    )
    assert not missing, (
        f"{len(missing)} string(s) marked for translation are not in {ZH_HANS_PO.name} (zh_Hans):\n  "
        + "\n  ".join(
            f"{where}: {msgid!r}" + (f" [context {context!r}]" if context else "")
            for where, msgid, context in missing
        )
        + f"\n{HOW_TO_FIX}"
    )


def _call_name(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def translation_calls_in_fstrings() -> list[str]:
    """``f"{gettext('ID'):<6}"``: xgettext (makemessages) does not look inside f-strings, so such
    a string never reaches the catalogue and always shows in English."""
    found = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        relative = path.relative_to(PACKAGE_DIR)
        if not all(map(_wanted_directory, relative.parts[:-1])):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for fstring in ast.walk(tree):
            if not isinstance(fstring, ast.JoinedStr):
                continue
            for node in ast.walk(fstring):
                if isinstance(node, ast.Call) and _call_name(node) in KEYWORDS and node.args:
                    first = node.args[0]
                    text = first.value if isinstance(first, ast.Constant) else ast.unparse(first)
                    found.append(f"{relative}:{node.lineno}: {_call_name(node)}({text!r})")
    return found


def test_no_translation_call_hides_in_an_fstring() -> None:
    hidden = translation_calls_in_fstrings()
    assert not hidden, (
        "makemessages (xgettext) cannot see translation calls inside f-strings, so these strings are "
        "never in the catalogue and always show in English.  Translate outside the f-string "
        "(e.g. `state = gettext('STATE')`, then f\"{state:<14}\"), then regenerate:\n  "
        + "\n  ".join(hidden)
        + f"\n{HOW_TO_FIX}"
    )


# --- Default messages of the error classes -------------------------------------------------------


def error_default_messages() -> dict[str, str]:
    """The docstrings that :class:`fapiao.core.errors.FapiaoError` subclasses use as their message
    when raised without one (``raise TokenInvalidError()``), by class.  Read from the source (no
    imports), following base classes by name."""
    classes: dict[str, tuple[list[str], str, str]] = {}  # name -> (base names, docstring, where)
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        relative = path.relative_to(PACKAGE_DIR)
        if not all(map(_wanted_directory, relative.parts[:-1])):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.ClassDef):
                bases = [base.id if isinstance(base, ast.Name) else ast.unparse(base) for base in node.bases]
                where = f"{relative}:{node.lineno} {node.name}"
                classes[node.name] = (bases, (ast.get_docstring(node) or "").strip(), where)
    errors = {"FapiaoError"}
    grew = True
    while grew:
        new = {name for name, (bases, _doc, _where) in classes.items() if errors.intersection(bases)}
        grew = not new <= errors
        errors |= new
    return {
        classes[name][2]: classes[name][1] for name in sorted(errors) if name in classes and classes[name][1]
    }


def test_error_default_messages_are_in_the_catalogue() -> None:
    catalogue = {key(message)[0] for message in entries()}
    missing = sorted(
        f"{name}: {doc!r}" for name, doc in error_default_messages().items() if doc not in catalogue
    )
    assert not missing, (
        "These default error messages (class docstrings) are not in the catalogue, so users see "
        "them in English.  Run `fapiao error_msgids`, then makemessages and translate:\n  "
        + "\n  ".join(missing)
    )


@pytest.mark.parametrize("language", ["zh_Hans", "en"])
def test_every_entry_is_whole_and_once(language: str) -> None:
    """Each ``msgid`` is followed by its ``msgstr`` and no ``msgid`` appears twice.

    The catalogues merge by union (.gitattributes), which keeps both sides' lines but may drop a
    line both sides added alike — such as an English entry's ``msgstr ""`` — leaving a ``msgid``
    that Babel silently reads as part of the next entry, and may keep two translations of one text.
    """
    path = LOCALE_DIR / language / "LC_MESSAGES" / "django.po"
    lines = path.read_text(encoding="utf-8").split("\n")
    broken, seen, twice = [], set(), []
    number = 0
    while number < len(lines):
        if not lines[number].startswith("msgid "):
            number += 1
            continue
        end = number + 1
        while end < len(lines) and lines[end].startswith('"'):
            end += 1
        text = "\n".join(lines[number:end])
        context = lines[number - 1] if number and lines[number - 1].startswith("msgctxt ") else ""
        if (context, text) in seen:
            twice.append(number + 1)
        seen.add((context, text))
        if end >= len(lines) or not lines[end].startswith(("msgstr", "msgid_plural")):
            broken.append(number + 1)
        number = end
    assert not broken, f"{path}: msgid without its msgstr at lines {broken}"
    assert not twice, f"{path}: msgid given again at lines {twice}"
