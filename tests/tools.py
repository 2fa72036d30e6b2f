"""External programs some tests run (Debian's promtool and amtool): skipped with a message on a
laptop without them, a failure under CI (CI=true), where .ci/run installs them."""

from __future__ import annotations

import os
import shutil

import pytest

PACKAGES = {"promtool": "prometheus", "amtool": "prometheus-alertmanager"}


def require_tool(name: str) -> str:
    """The program's path; else skip (or, under CI, fail) saying which package brings it."""
    found = shutil.which(name)
    if found:
        return found
    package = PACKAGES.get(name, name)
    message = f"{name} is not installed: it comes with Debian's {package} (apt-get install -y {package})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; CI requires it (.ci/run installs it)")
    pytest.skip(message)
