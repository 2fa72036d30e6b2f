"""The offline receipt verifier against the valid and forged fixtures in fixtures/receipts/."""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fapiao.core.receipt import main, verify_receipt
from fapiao.core.signing import KeyRegistry, SigningKey, b64encode, load_public_keys, make_head, sign_head

FIXTURES = Path(__file__).parent / "fixtures" / "receipts"
KEYS = FIXTURES / "keys.json"
COMPROMISED = FIXTURES / "keys-compromised.json"

CASES = [
    ("valid.json", KEYS, "ok"),
    ("bad-format.json", KEYS, "bad_format"),
    ("bad-base64.json", KEYS, "bad_base64"),
    ("unknown-key.json", KEYS, "unknown_key"),
    ("valid.json", COMPROMISED, "key_compromised"),
    ("bad-signature.json", KEYS, "bad_signature"),
    ("flipped-proof.json", KEYS, "bad_proof"),
    ("index-out-of-range.json", KEYS, "out_of_range"),
    ("size-out-of-range.json", KEYS, "out_of_range"),
    ("other-merchant.json", KEYS, "log_mismatch"),
    ("seq-mismatch.json", KEYS, "seq_mismatch"),
    ("truncated.json", KEYS, "malformed"),
    ("missing-field.json", KEYS, "malformed"),
]


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_receipt_fixtures", FIXTURES / "make_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def registry() -> KeyRegistry:
    return load_public_keys(KEYS)


@pytest.fixture(scope="module")
def valid() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "valid.json").read_bytes())
    return data


def test_fixtures_are_up_to_date() -> None:
    built = _load_generator().build_fixtures()
    on_disk = {p.name for p in FIXTURES.iterdir() if p.name != "make_fixtures.py" and p.is_file()}
    assert set(built) == on_disk
    for name, data in built.items():
        assert (FIXTURES / name).read_bytes() == data, f"{name} is stale: run make_fixtures.py"


def test_valid_fixture_is_the_shared_example(valid: dict[str, Any]) -> None:
    example = Path(__file__).resolve().parents[2] / "docs" / "spec" / "receipt-example.json"
    assert json.loads(example.read_bytes())["receipt"] == valid


@pytest.mark.parametrize(("name", "keys", "code"), CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_fixture_verdicts(name: str, keys: Path, code: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = (FIXTURES / name).read_bytes()
    verdict = verify_receipt(data, load_public_keys(keys))
    assert verdict.code == code, verdict
    assert verdict.ok is (code == "ok")
    assert verdict.message_zh and verdict.message_en

    rc = main(["verify", str(FIXTURES / name), "--public-key", str(keys)])
    out = capsys.readouterr()
    assert rc == (0 if code == "ok" else 1)
    assert "Traceback" not in out.out + out.err
    assert verdict.message_zh in out.out

    rc = main(["verify", str(FIXTURES / name), "--public-key", str(keys), "--json", "--lang", "en"])
    printed = json.loads(capsys.readouterr().out)
    assert rc == (0 if code == "ok" else 1)
    assert printed["code"] == code and printed["ok"] is (code == "ok")


def test_valid_message(registry: KeyRegistry, capsys: pytest.CaptureFixture[str]) -> None:
    verdict = verify_receipt((FIXTURES / "valid.json").read_bytes(), registry)
    assert verdict.message_zh == (
        "该发票是日志第 1 条，已被大小为 3 的签名树头包含。"
        "（条目序号从 0 起计。）发票号码 26110100000000000002，"
        "签名树头时间 2026-11-27T01:00:10Z（北京时间 2026-11-27 09:00:10）。"
    )
    assert verdict.message_en.startswith(
        "This invoice is entry 1 (counting from 0) of the log, included in the signed tree head of size 3. "
        "Invoice number 26110100000000000002"
    )
    assert main(["verify", str(FIXTURES / "valid.json"), "--public-key", str(KEYS), "--lang", "en"]) == 0
    assert "This invoice is entry 1" in capsys.readouterr().out


def test_compromise_after_the_head_keeps_it_valid(valid: dict[str, Any]) -> None:
    registry = load_public_keys(KEYS)
    registry.mark_compromised("5bb0319ddf0d7e20", "2026-11-27T01:00:11Z")
    assert verify_receipt(valid, registry).code == "ok"
    registry.mark_compromised("5bb0319ddf0d7e20", "2026-11-27T01:00:10Z")
    assert verify_receipt(valid, registry).code == "key_compromised"


def test_plain_mapping_of_keys(valid: dict[str, Any], registry: KeyRegistry) -> None:
    raw = {r.key_id: r.public_raw for r in registry.records()}
    assert verify_receipt(valid, raw).ok
    assert verify_receipt(valid, {}).code == "unknown_key"


def _mutated(valid: dict[str, Any], path: list[str | int], value: Any) -> dict[str, Any]:
    receipt = copy.deepcopy(valid)
    target: Any = receipt
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return receipt


@pytest.mark.parametrize(
    ("path", "value", "code"),
    [
        (["index"], "1", "malformed"),
        (["index"], True, "malformed"),
        (["index"], -1, "out_of_range"),
        (["head", "size"], "3", "malformed"),
        (["head", "at"], "2026-11-27 01:00:10", "malformed"),
        (["proof"], "p+Bh", "malformed"),
        (["proof", 0], "p+BhfdH5gD0p/XAAUzHocqfhdDPrFLEXBQffTHCZxOA", "bad_base64"),
        (["proof", 0], "p+BhfdH5gD0p/XAAUzHocqfhdDPrFLEXBQffTHCZxOB=", "bad_base64"),  # non-canonical
        (["proof", 0], "AAAA", "malformed"),  # not 32 bytes
        (["entry"], "e30=", "malformed"),  # {} under the real head: not an entry
        (["log"], "91110000MA01XKQ2TQ", "log_mismatch"),
        (["format"], None, "bad_format"),
        (["signature"], b64encode(bytes(64)), "bad_signature"),
    ],
)
def test_field_level_forgeries(
    valid: dict[str, Any], registry: KeyRegistry, path: list[str | int], value: Any, code: str
) -> None:
    verdict = verify_receipt(_mutated(valid, path, value), registry)
    assert verdict.code == code, verdict


def test_entry_must_be_canonical(valid: dict[str, Any], registry: KeyRegistry) -> None:
    entry = json.loads(base64.b64decode(valid["entry"]))
    spaced = json.dumps(entry, ensure_ascii=False).encode("utf-8")
    assert verify_receipt(_mutated(valid, ["entry"], b64encode(spaced)), registry).code == "malformed"


def test_json_oddities_are_malformed(registry: KeyRegistry) -> None:
    text = (FIXTURES / "valid.json").read_text("utf-8")
    assert verify_receipt(text.replace('"index": 1', '"index": 1, "index": 1'), registry).code == "malformed"
    assert verify_receipt(text.replace('"index": 1', '"index": NaN'), registry).code == "malformed"
    assert verify_receipt(text.replace('"index": 1', '"index": 1.0'), registry).code == "malformed"
    assert verify_receipt(text.replace("{", '{"x": 1,', 1), registry).code == "malformed"
    assert verify_receipt(b"\xff\xfe", registry).code == "malformed"
    assert verify_receipt("[]", registry).code == "malformed"
    assert verify_receipt("[" * 100000, registry).code == "malformed"
    assert verify_receipt(b"\xef\xbb\xbf" + text.encode("utf-8"), registry).ok  # a BOM is tolerated


def test_a_real_head_for_another_log_is_a_log_mismatch(valid: dict[str, Any]) -> None:
    key = SigningKey.from_seed(
        bytes.fromhex("eb6c974e5451e9999f94c007add4be937b4411f935ac5aa94931218b0adbfa5c")
    )
    registry = KeyRegistry()
    registry.add(key.public_raw)
    head = make_head(
        log="91110000MA01XKQ2TQ",
        size=3,
        root=base64.b64decode(valid["head"]["root"]),
        at=valid["head"]["at"],
        key_id=key.key_id,
    )
    receipt = {**valid, "head": head, "signature": sign_head(head, key)}
    assert verify_receipt(receipt, registry).code == "log_mismatch"


@settings(max_examples=300, deadline=None)
@given(blob=st.binary(max_size=400))
def test_random_bytes_never_raise(blob: bytes) -> None:
    verdict = verify_receipt(blob, load_public_keys(KEYS))
    assert not verdict.ok
    assert "无法检查" not in verdict.message_zh  # handled, not caught by the last-resort guard


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_member_replaced_never_raises_nor_passes(data: st.DataObject) -> None:
    valid = json.loads((FIXTURES / "valid.json").read_bytes())
    paths: list[list[str | int]] = (
        [[k] for k in valid] + [["head", k] for k in valid["head"]] + [["proof", 0]]
    )
    path = data.draw(st.sampled_from(paths))
    value = data.draw(JSON)
    receipt = _mutated(valid, path, value)
    verdict = verify_receipt(receipt, load_public_keys(KEYS))
    original: Any = valid
    for step in path:
        original = original[step]
    assert verdict.ok is (value == original and type(value) is type(original))
    assert "无法检查" not in verdict.message_zh  # handled, not caught by the last-resort guard


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    valid = str(FIXTURES / "valid.json")
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("not a key")
    for argv in (
        ["verify", str(tmp_path / "missing.json"), "--public-key", str(KEYS)],
        ["verify", valid, "--public-key", str(tmp_path / "missing-keys.json")],
        ["verify", valid, "--public-key", str(garbage)],
        ["verify", valid],
        ["verify", valid, "--lang", "fr", "--public-key", str(KEYS)],
        ["frobnicate"],
        [],
    ):
        assert main(argv) == 2, argv
        out = capsys.readouterr()
        assert "Traceback" not in out.out + out.err
        assert out.err.strip(), argv
    assert main(["verify", valid], keys=load_public_keys(KEYS)) == 0
