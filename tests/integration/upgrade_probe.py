"""What the upgrade test asks the API of an upgraded installation, run in its own process.

``python -m tests.integration.upgrade_probe MANIFEST`` with ``FAPIAO_VAR_DIR`` at the upgraded copy:
mints tokens with ``fapiao token create`` (the fixture's own expire), then fetches the fixture's
invoices, their receipts, the revealed individual buyer and the restored case, and retries every
POST the fixture made with an Idempotency-Key.  Prints the answers as one JSON document; the test
(tests/integration/test_upgrade_from_pre_platform.py) judges them.
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import django
from django.core.management import call_command
from django.test import Client


def client_for(username: str) -> Client:
    out = io.StringIO()
    call_command("token", "create", username, "--scope", "write", "--name", "upgrade-test", stdout=out)
    return Client(headers={"Authorization": f"Bearer {out.getvalue().strip()}"})


def answer(response: Any) -> dict[str, Any]:
    return {
        "status": response.status_code,
        "replayed": response.get("Idempotent-Replayed"),
        "body": response.json(),
    }


def probe(manifest: dict[str, Any]) -> dict[str, Any]:
    clients = {name: client_for(name) for name in ("clerk", "clerk2")}
    clerk = clients["clerk"]
    numbers: dict[str, str] = manifest["invoices"]

    def owner(name: str) -> Client:
        return clients["clerk2" if name == "merchant_b" else "clerk"]

    result: dict[str, Any] = {
        "totals_before": {name: c.get("/api/v1/invoices").json()["total"] for name, c in clients.items()},
        "invoices": {name: answer(owner(name).get(f"/api/v1/invoices/{n}")) for name, n in numbers.items()},
        "receipts": {
            name: answer(owner(name).get(f"/api/v1/invoices/{n}/receipt")) for name, n in numbers.items()
        },
        "reveal": answer(clerk.get(f"/api/v1/invoices/{numbers['person']}?reveal=true")),
        "case": answer(clerk.get(f"/api/v1/cases/{manifest['case']}")),
        "retries": [
            answer(
                clients[item["user"]].post(
                    item["path"],
                    data=json.dumps(item["body"], ensure_ascii=False),
                    content_type="application/json",
                    headers={"Idempotency-Key": item["key"]},
                )
            )
            for item in manifest["idempotent"]
        ],
    }
    result["totals_after"] = {name: c.get("/api/v1/invoices").json()["total"] for name, c in clients.items()}
    return result


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fapiao.settings")
    django.setup()
    manifest = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    sys.stdout.write(json.dumps(probe(manifest), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
