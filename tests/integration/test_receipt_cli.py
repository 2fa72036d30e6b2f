"""`fapiao receipt verify FILE [--public-key KEYS]`: offline, no database, no traceback."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import translation

ROOT = Path(__file__).resolve().parents[2]
FAPIAO = Path(sys.executable).parent / "fapiao"
FIXTURES = ROOT / "tests" / "unit" / "fixtures" / "receipts"
UNREACHABLE_DB = "postgresql://nobody@127.0.0.1:9/nowhere"  # any connection attempt would fail

CASES = [
    ("valid.json", "keys.json", 0, "ok"),
    ("bad-format.json", "keys.json", 1, "bad_format"),
    ("bad-base64.json", "keys.json", 1, "bad_base64"),
    ("unknown-key.json", "keys.json", 1, "unknown_key"),
    ("valid.json", "keys-compromised.json", 1, "key_compromised"),
    ("bad-signature.json", "keys.json", 1, "bad_signature"),
    ("flipped-proof.json", "keys.json", 1, "bad_proof"),
    ("index-out-of-range.json", "keys.json", 1, "out_of_range"),
    ("size-out-of-range.json", "keys.json", 1, "out_of_range"),
    ("other-merchant.json", "keys.json", 1, "log_mismatch"),
    ("seq-mismatch.json", "keys.json", 1, "seq_mismatch"),
    ("truncated.json", "keys.json", 1, "malformed"),
    ("missing-field.json", "keys.json", 1, "malformed"),
]


def var_dir(tmp_path: Path, registry: str | None = "keys.json") -> Path:
    """A data directory whose keys/keys.json is the given fixture registry."""
    var = tmp_path / "var"
    (var / "keys").mkdir(parents=True, exist_ok=True)
    if registry:
        shutil.copy(FIXTURES / registry, var / "keys" / "keys.json")
    return var


def fapiao(*args: str, var: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("FAPIAO_", "DJANGO_SETTINGS_MODULE"))
    }
    environment.update(FAPIAO_VAR_DIR=str(var), FAPIAO_DATABASE_URL=UNREACHABLE_DB, **env)
    return subprocess.run(
        [str(FAPIAO), *args], capture_output=True, text=True, env=environment, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("name", "registry", "status", "code"),
    [CASES[0], CASES[4], CASES[6], CASES[11]],
)
def test_verify_against_the_installation_keys_in_a_subprocess(tmp_path, name, registry, status, code):
    result = fapiao(
        "receipt", "verify", str(FIXTURES / name), "--lang", "en", var=var_dir(tmp_path, registry)
    )
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    if status == 0:
        assert result.stdout.startswith("VALID: ") and "26110100000000000002" in result.stdout
    else:
        assert result.stdout.startswith(f"INVALID ({code}): ")


def test_verify_json_and_chinese_in_a_subprocess(tmp_path):
    var = var_dir(tmp_path)
    result = fapiao("receipt", "verify", str(FIXTURES / "valid.json"), var=var)
    assert result.returncode == 0 and "发票号码 26110100000000000002" in result.stdout
    result = fapiao("receipt", "verify", str(FIXTURES / "flipped-proof.json"), "--json", var=var)
    assert result.returncode == 1
    verdict = json.loads(result.stdout)
    assert verdict["ok"] is False and verdict["code"] == "bad_proof"


@pytest.mark.parametrize(
    ("name", "key_file", "status"),
    [
        ("valid.json", "test-key.pem", 0),
        ("valid.json", "test-key.b64", 0),
        ("flipped-proof.json", "keys.json", 1),
    ],
)
def test_verify_with_a_public_key_file_needs_not_even_settings(tmp_path, name, key_file, status):
    """With --public-key, `fapiao` hands the file to the core verifier before Django is touched."""
    result = fapiao(
        "receipt",
        "verify",
        str(FIXTURES / name),
        "--public-key",
        str(FIXTURES / key_file),
        var=tmp_path / "nothing-here",
        DJANGO_SETTINGS_MODULE="no.such.settings",
    )
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "nothing-here").exists()


def test_an_installation_without_a_key_registry_says_what_to_do(tmp_path):
    result = fapiao(
        "receipt", "verify", str(FIXTURES / "valid.json"), "--lang", "en", var=var_dir(tmp_path, None)
    )
    assert result.returncode == 2
    assert "no key registry" in result.stderr and "--public-key" in result.stderr
    assert "Traceback" not in result.stderr


# --- the management command in-process: pytest-django forbids database access here ---------------


@pytest.fixture
def installation_keys(_isolated_files: None, settings: Any, tmp_path: Path) -> Path:
    settings.KEYS_DIR = var_dir(tmp_path) / "keys"
    return Path(settings.KEYS_DIR)


def verify(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        with translation.override("en"):
            call_command("receipt", "verify", *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(("name", "registry", "status", "code"), CASES)
def test_every_fixture_gets_its_precise_verdict(installation_keys, name, registry, status, code):
    shutil.copy(FIXTURES / registry, installation_keys / "keys.json")
    exit_status, out, err = verify(str(FIXTURES / name), "--json")
    assert exit_status == status, err
    verdict = json.loads(out)
    assert verdict["code"] == code and verdict["ok"] is (status == 0)
    exit_status, out, _err = verify(str(FIXTURES / name), "--lang", "en")
    assert exit_status == status
    assert out.startswith("VALID: " if status == 0 else f"INVALID ({code}): ")


def test_usage_errors_exit_2(installation_keys, tmp_path):
    status, out, err = verify(str(tmp_path / "missing.json"), "--lang", "en")
    assert status == 2 and out == "" and "Cannot read the receipt file" in err
    (installation_keys / "keys.json").write_text("{not json")
    status, _out, err = verify(str(FIXTURES / "valid.json"), "--lang", "en")
    assert status == 2 and "Cannot read the key registry" in err
    status, _out, err = verify(
        str(FIXTURES / "valid.json"), "--public-key", str(FIXTURES / "valid.json"), "--lang", "en"
    )
    assert status == 2 and "public key file" in err


@pytest.mark.django_db
def test_a_receipt_from_this_installation_verifies_with_its_own_keys(
    _isolated_files, settings, tmp_path, client_for, valid_invoice
):
    settings.KEYS_DIR = tmp_path / "keys"
    response = client_for("clerk").post(
        "/api/v1/invoices", data=json.dumps(valid_invoice), content_type="application/json"
    )
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(response.json()["receipt"], ensure_ascii=False), encoding="utf-8")
    status, out, _err = verify(str(path), "--lang", "en")
    assert status == 0 and out.startswith("VALID: ") and response.json()["number"] in out
