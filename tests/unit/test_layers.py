"""The layers are a contract a tool checks (docs/architecture.md): import-linter keeps them in
``make lint``; these tests show the contract holds today and that an arrow against it fails."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is a dev dependency")


def _lint(src: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=src,
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_layers_hold():
    done = _lint(ROOT / "src")
    assert done.returncode == 0, done.stdout[-3000:]


@pytest.mark.parametrize(
    ("module", "line", "message"),
    [
        (
            "ledger/verify.py",
            "import fapiao.invoices.models",
            "fapiao.ledger is not allowed to import fapiao.invoices",
        ),
        (
            "platform/uow.py",
            "import fapiao.ledger.services",
            "fapiao.platform is not allowed to import fapiao.ledger",
        ),
        ("core/money.py", "import django.db", "fapiao.core is not allowed to import django"),
    ],
)
def test_an_arrow_against_the_layers_fails(tmp_path: Path, module: str, line: str, message: str):
    shutil.copytree(
        ROOT / "src" / "fapiao", tmp_path / "fapiao", ignore=shutil.ignore_patterns("__pycache__")
    )
    target = tmp_path / "fapiao" / module
    target.write_text(target.read_text() + f"\n{line}  # added by the test\n")
    done = _lint(tmp_path)
    assert done.returncode != 0
    assert message in re.sub(r"\s+", " ", done.stdout), done.stdout[-3000:]


def test_function_level_imports_only_where_app_loading_needs_them():
    """``# noqa: PLC0415`` (an import inside a function) only in apps.py and cli.py, with a reason."""
    offenders = []
    for path in (ROOT / "src" / "fapiao").rglob("*.py"):
        for number, text in enumerate(path.read_text().splitlines(), 1):
            if "noqa: PLC0415" not in text:
                continue
            reason = text.split("noqa: PLC0415", 1)[1].strip()
            if path.name not in {"apps.py", "cli.py"} or not reason:
                offenders.append(f"{path.relative_to(ROOT)}:{number}")
    assert offenders == []
