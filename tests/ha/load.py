"""Issuing clients for the failover tests: each retries its invoice with the same Idempotency-Key
until it is acknowledged, and every acknowledgement is timed (the gaps are the seconds without writes).

The attributes :func:`tests.faults.test_kill_server.check_outcome` reads (``acked``,
``attempts``, ``unexpected``) are kept the way it expects them.
"""

from __future__ import annotations

import http.client
import itertools
import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.conftest import VALID_INVOICE

RETRY_PAUSE = 0.1  # seconds; shorter than Retry-After so the measured gaps are the cluster's, not ours
REQUEST_TIMEOUT = 30


def body_for(key: str) -> bytes:
    return json.dumps(dict(VALID_INVOICE, remark=key), ensure_ascii=False).encode()


@dataclass
class Load:
    ports: list[int]
    token: str
    clients: int = 16
    prefix: str = "ha"
    lock: threading.Lock = field(default_factory=threading.Lock)
    running: threading.Event = field(default_factory=threading.Event)
    acked: dict[str, dict[str, Any]] = field(default_factory=dict)
    attempts: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    ack_times: list[float] = field(default_factory=list)
    problem_codes: Counter[str] = field(default_factory=Counter)
    threads: list[threading.Thread] = field(default_factory=list)
    next_id: int = 0

    def new_key(self) -> str:
        with self.lock:
            self.next_id += 1
            return f"{self.prefix}-{self.next_id:06d}-{random.getrandbits(32):08x}"

    def start(self) -> None:
        self.running.set()
        for number in range(self.clients):
            port = self.ports[number % len(self.ports)]
            thread = threading.Thread(target=self._client, args=(port,), name=f"issuer-{number}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self, timeout: float = 120) -> None:
        """No new invoices; each client finishes (acknowledges) the one it holds."""
        self.running.clear()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        stuck = [thread.name for thread in self.threads if thread.is_alive()]
        if stuck:
            self.unexpected.append(f"clients still retrying after {timeout} s: {stuck}")

    def _client(self, port: int) -> None:
        connection: http.client.HTTPConnection | None = None
        while self.running.is_set():
            key = self.new_key()
            while True:  # the same key until it is acknowledged
                with self.lock:
                    self.attempts[key] += 1
                if connection is None:
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
                try:
                    connection.request(
                        "POST",
                        "/api/v1/invoices",
                        body=body_for(key),
                        headers={
                            "Authorization": f"Bearer {self.token}",
                            "Content-Type": "application/json",
                            "Idempotency-Key": key,
                        },
                    )
                    response = connection.getresponse()
                    status, payload = response.status, response.read()
                    retry_after = response.getheader("Retry-After")
                except (OSError, http.client.HTTPException):
                    connection.close()
                    connection = None
                    with self.lock:
                        self.statuses["no answer"] += 1
                    time.sleep(RETRY_PAUSE)
                    continue
                now = time.monotonic()
                with self.lock:
                    self.statuses[str(status)] += 1
                    if status == 201:
                        if key in self.acked:
                            self.unexpected.append(f"{key}: acknowledged twice")
                        self.acked[key] = json.loads(payload)
                        self.ack_times.append(now)
                        break
                    if status == 503 and retry_after:
                        self.problem_codes[_code(payload)] += 1
                    else:
                        self.unexpected.append(f"{key}: HTTP {status} {payload[:300]!r}")
                        break
                time.sleep(RETRY_PAUSE)
        if connection is not None:
            connection.close()

    def throughput(self, since: float, until: float) -> float:
        with self.lock:
            count = sum(1 for t in self.ack_times if since <= t < until)
        return count / max(until - since, 1e-9)

    def longest_gap(self, since: float, until: float) -> float:
        """The longest time without an acknowledgement within [since, until] (edges included)."""
        with self.lock:
            times = sorted(t for t in self.ack_times if since <= t <= until)
        points = [since, *times, until]
        return max(b - a for a, b in itertools.pairwise(points))


def post_invoice(
    port: int, token: str, key: str, timeout: float = 10
) -> tuple[int, str | None, dict[str, Any]]:
    """One POST /api/v1/invoices: (status, Retry-After, JSON body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(
            "POST",
            "/api/v1/invoices",
            body=body_for(key),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Idempotency-Key": key,
            },
        )
        response = connection.getresponse()
        return response.status, response.getheader("Retry-After"), json.loads(response.read())
    finally:
        connection.close()


def _code(payload: bytes) -> str:
    try:
        return str(json.loads(payload)["type"]).rsplit("/", 1)[-1]
    except (ValueError, KeyError, TypeError):
        return "?"
