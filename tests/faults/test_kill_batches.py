"""SIGKILL the server while bulk requests are in flight: every acknowledged item is there, and a
batch that got no answer is either wholly stored or not at all — never half-written.

Two senders POST batches (``BATCH`` invoices each, every item with a unique key that is also its
invoice's remark) to a real gunicorn server (2 gthread workers, group commit on).  At a random
moment of each cycle the whole process group is SIGKILLed and the server restarted on the same
database.  Then: every acknowledged item's invoice is stored as acknowledged with a receipt that
verifies; each unanswered batch has all of its items or none; every stored invoice belongs to a
batch that was sent; the ledger has one entry per invoice.  Finally every unanswered batch is
retried with the same keys: each item is issued exactly once.  The log goes to
``artifacts/faults/kill-batches-<backend>.log``.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fapiao.core.receipt import verify_receipt
from fapiao.core.signing import KeyRegistry
from tests.conftest import VALID_INVOICE
from tests.faults.server import REPO_ROOT, LiveServer, throwaway_postgres
from tests.faults.test_kill_server import MERCHANT_USCC, fetch_all, query, require_postgres

CYCLES = int(os.environ.get("FAPIAO_KILL_BATCH_CYCLES", "6"))
SENDERS = 2
BATCH = 100
KILL_WINDOW = (0.3, 2.0)
ARTIFACTS = REPO_ROOT / "artifacts" / "faults"


class Campaign:
    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.lock = threading.Lock()
        self.running = threading.Event()
        self.finished = threading.Event()
        self.next_id = 0
        self.cycle = 0
        self.acked: dict[str, dict[str, Any]] = {}  # item key → acknowledged invoice
        self.unanswered: list[list[str]] = []  # the item keys of each batch that got no answer
        self.in_flight = 0
        self.unexpected: list[str] = []

    def new_batch(self) -> list[str]:
        with self.lock:
            self.next_id += 1
            tag = f"kb-{self.next_id:05d}-{random.getrandbits(24):06x}"
        return [f"{tag}-{i:03d}" for i in range(BATCH)]


def send(port: int, token: str, keys: list[str]) -> tuple[int, dict[str, Any]]:
    body = {"items": [{"key": key, "invoice": dict(VALID_INVOICE, remark=key)} for key in keys]}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(
            "POST",
            "/api/v1/invoice-batches",
            body=json.dumps(body, ensure_ascii=False).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def sender(campaign: Campaign) -> None:
    while not campaign.finished.is_set():
        if not campaign.running.wait(0.05):
            continue
        keys = campaign.new_batch()
        with campaign.lock:
            campaign.in_flight += 1
        try:
            status, body = send(campaign.port, campaign.token, keys)
        except (OSError, http.client.HTTPException, ValueError):
            with campaign.lock:
                campaign.unanswered.append(keys)
                campaign.in_flight -= 1
            continue
        with campaign.lock:
            campaign.in_flight -= 1
            if status >= 500:
                campaign.unanswered.append(keys)
            elif status != 200 or body["issued"] != BATCH:
                campaign.unexpected.append(f"HTTP {status}: {str(body)[:300]}")
            else:
                for item in body["items"]:
                    campaign.acked[item["key"]] = item["invoice"]


def check(server: LiveServer, campaign: Campaign, token: str) -> list[str]:
    problems = list(campaign.unexpected)
    rows = query(
        server,
        "SELECT i.number, i.remark, i.ledger_seq FROM invoices_invoice i "
        "JOIN accounts_merchant m ON m.id = i.merchant_id WHERE m.uscc = %s",
        (MERCHANT_USCC,),
    )
    stored = {remark: number for number, remark, _ in rows}
    if doubled := [key for key, n in Counter(remark for _, remark, _ in rows).items() if n > 1]:
        problems.append(f"{len(doubled)} keys with more than one invoice, e.g. {doubled[:5]}")
    registry = KeyRegistry.load(server.keys_file)
    fetched = fetch_all(server, token, [body["number"] for body in campaign.acked.values()])
    for key, body in campaign.acked.items():
        if stored.get(key) != body["number"]:
            problems.append(f"{key}: acknowledged {body['number']}, stored {stored.get(key)}")
            continue
        status, now = fetched[body["number"]]
        if status != 200 or {k: v for k, v in now.items() if k != "receipt"} != {
            k: v for k, v in body.items() if k != "receipt"
        }:
            problems.append(f"{key}: {body['number']} differs from its acknowledgement ({status})")
        if not verify_receipt(body["receipt"], registry).ok:
            problems.append(f"{key}: the receipt of {body['number']} does not verify")
    sent = set(campaign.acked) | {key for keys in campaign.unanswered for key in keys}
    if strays := set(stored) - sent:
        problems.append(f"{len(strays)} invoices of keys never sent, e.g. {sorted(strays)[:5]}")
    for keys in campaign.unanswered:
        present = sum(1 for key in keys if key in stored)
        if present not in {0, len(keys)}:
            problems.append(
                f"unanswered batch {keys[0]}…: {present} of {len(keys)} items stored (half-written)"
            )
    seqs = sorted(seq for _, _, seq in rows if seq is not None)
    if seqs != list(range(len(rows))):
        problems.append(f"ledger_seq values are not 0..{len(rows) - 1}")
    return problems


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    require_postgres()
    with throwaway_postgres("fapiao_kill_batches") as url:
        yield url


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_sigkill_during_batches_leaves_no_half_written_batch(
    database_url: str | None, tmp_path: Path
) -> None:
    backend = "postgres" if database_url else "sqlite"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    seed = int(os.environ.get("FAPIAO_KILL_SEED", str(time.time_ns() % 1_000_000)))
    rng = random.Random(seed)
    server = LiveServer(
        tmp_path / "var", database_url=database_url, env={"FAPIAO_BATCHES_PER_MINUTE": "100000"}
    )
    server.prepare()
    token = server.token("clerk", "write")
    campaign = Campaign(server.port, token)
    threads = [threading.Thread(target=sender, args=(campaign,)) for _ in range(SENDERS)]
    with (ARTIFACTS / f"kill-batches-{backend}.log").open("w") as log:
        log.write(f"# seed={seed} cycles={CYCLES} senders={SENDERS} batch={BATCH}\n")
        try:
            for thread in threads:
                thread.start()
            for cycle in range(1, CYCLES + 1):
                server.start()
                campaign.running.set()
                kill_at = rng.uniform(*KILL_WINDOW)
                time.sleep(kill_at)
                campaign.running.clear()
                server.kill()
                deadline = time.monotonic() + 60
                while campaign.in_flight and time.monotonic() < deadline:
                    time.sleep(0.01)
                log.write(
                    f"cycle {cycle}: killed at {kill_at:.2f} s; {len(campaign.acked)} items acknowledged, "
                    f"{len(campaign.unanswered)} batches unanswered so far\n"
                )
        finally:
            campaign.finished.set()
            for thread in threads:
                thread.join(60)
        server.start()
        try:
            problems = check(server, campaign, token)
            # Retried with the same keys, every unanswered batch completes, each item once.
            for keys in campaign.unanswered:
                status, body = send(server.port, token, keys)
                if status != 200 or body["issued"] != len(keys):
                    problems.append(f"retry of {keys[0]}…: HTTP {status} {str(body)[:200]}")
                    continue
                for item in body["items"]:
                    campaign.acked[item["key"]] = item["invoice"]
            campaign.unanswered.clear()
            problems += check(server, campaign, token)
            log.write("\n".join(problems or ["ok"]) + "\n")
        finally:
            server.stop()
    assert campaign.acked, "no batch was acknowledged: the test measured nothing"
    assert not problems, "\n".join(problems[:20])
