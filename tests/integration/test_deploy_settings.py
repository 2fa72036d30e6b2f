"""Production settings pass Django's deployment checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_production_settings_pass_check_deploy(tmp_path: Path):
    env = {
        **os.environ,
        "FAPIAO_PRODUCTION": "1",
        "FAPIAO_SECRET_KEY": "x" * 20 + "-production-secret-key-with-enough-entropy-9f8e7d6c5b4a",
        "FAPIAO_VAR_DIR": str(tmp_path),
        # Without it a production server warns (fapiao.W002, issue 14): links in mails need it.
        "FAPIAO_PUBLIC_URL": "https://fapiao.example.cn",
        "DJANGO_SETTINGS_MODULE": "fapiao.settings",
    }
    result = subprocess.run(
        [sys.executable, "-m", "django", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# The Citus declaration of every table and its checks: tests/integration/test_distribution.py.
