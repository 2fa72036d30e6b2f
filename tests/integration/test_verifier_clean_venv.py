"""The offline verifier runs in a clean virtualenv holding only cryptography and rfc8785."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve()
SRC = HERE.parents[2] / "src"
FIXTURES = HERE.parents[1] / "unit" / "fixtures" / "receipts"


def _run(args: list[str], env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.slow
def test_verifier_in_a_clean_venv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))

    base_env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}
    base_env["PYTHONIOENCODING"] = "utf-8"
    install = _run(
        [python, "-m", "pip", "install", "--quiet", "cryptography", "rfc8785"], base_env, timeout=900
    )
    assert install.returncode == 0, install.stderr

    env = {**base_env, "PYTHONPATH": str(SRC)}
    # The venv really is clean: no Django, nothing of the project installed.
    no_django = _run([python, "-c", "import django"], env)
    assert no_django.returncode != 0
    assert "ModuleNotFoundError" in no_django.stderr

    keys = str(FIXTURES / "keys.json")
    ok = _run(
        [python, "-m", "fapiao.core.receipt", "verify", str(FIXTURES / "valid.json"), "--public-key", keys],
        env,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "该发票是日志第 1 条，已被大小为 3 的签名树头包含" in ok.stdout
    assert "26110100000000000002" in ok.stdout

    for name, code in [("flipped-proof.json", "bad_proof"), ("other-merchant.json", "log_mismatch")]:
        forged = _run(
            [python, "-m", "fapiao.core.receipt", "verify", str(FIXTURES / name), "--public-key", keys], env
        )
        assert forged.returncode == 1, forged.stdout + forged.stderr
        assert code in forged.stdout and "回执无效" in forged.stdout
        assert "Traceback" not in forged.stdout + forged.stderr

    pem = _run(
        [python, "-m", "fapiao.core.receipt", "verify", str(FIXTURES / "valid.json"), "--public-key",
         str(FIXTURES / "test-key.pem"), "--json"],
        env,
    )  # fmt: skip
    assert pem.returncode == 0 and '"code": "ok"' in pem.stdout

    missing = _run(
        [python, "-m", "fapiao.core.receipt", "verify", str(tmp_path / "nope.json"), "--public-key", keys],
        env,
    )
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
