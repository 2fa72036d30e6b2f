"""A small closed-loop HTTP load generator: N processes × M threads, keep-alive HTTP/1.1.

Each thread owns one persistent ``http.client`` connection and sends its next request as
soon as the previous answer is read (a closed loop, like ``wrk``).  The load runs in other
processes than the caller, so the client's GIL never throttles the server it measures, and
it needs nothing beyond the standard library.

A :class:`Workload` says what to send; it must be picklable (the processes are forked or
spawned), so it is a plain dataclass, and ``request(n)`` is a function of a per-thread
counter: unique Idempotency-Keys and rotating lookup numbers come from that.
"""

from __future__ import annotations

import http.client
import json
import math
import multiprocessing
import statistics
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Workload:
    method: str
    path: str  # may hold "{item}": replaced by items[n % len(items)]
    token: str
    body: dict[str, Any] | None = None
    items: list[str] = field(default_factory=list)
    idempotency: bool = False  # a unique Idempotency-Key per request
    expect: int = 200
    # > 0: POST /api/v1/invoice-batches bodies of this many copies of ``body``, each item with its
    # own client key (unique per request), instead of ``body`` itself.
    batch: int = 0

    def request(self, n: int, prefix: str) -> tuple[str, str, bytes | None, dict[str, str]]:
        headers = {"Authorization": f"Bearer {self.token}", "Connection": "keep-alive"}
        path = self.path.format(item=self.items[n % len(self.items)]) if self.items else self.path
        data = None
        if self.body is not None and self.batch:
            one = json.dumps(self.body, ensure_ascii=False)
            items = ",".join(f'{{"key":"{prefix}-{n}-{i}","invoice":{one}}}' for i in range(self.batch))
            data = f'{{"items":[{items}]}}'.encode()
            headers["Content-Type"] = "application/json"
        elif self.body is not None:
            data = json.dumps(self.body, ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        if self.idempotency:
            headers["Idempotency-Key"] = f"{prefix}-{n}"
        return self.method, path, data, headers


@dataclass
class LoadResult:
    seconds: float
    latencies: list[float]  # seconds, one per request completed inside the measured window
    statuses: dict[int, int]
    errors: int

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        return percentile(self.latencies, p)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1]


def _thread_loop(
    port: int, workload: Workload, times: tuple[float, float, float], out: dict[str, Any]
) -> None:
    start_at, measure_from, stop_at = times
    prefix = uuid.uuid4().hex[:12]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    n = 0
    time.sleep(max(0.0, start_at - time.time()))
    while True:
        sent = time.time()
        if sent >= stop_at:
            break
        method, path, data, headers = workload.request(n, prefix)
        n += 1
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            errors += 1
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            continue
        done = time.time()
        if measure_from <= done <= stop_at:
            statuses[status] = statuses.get(status, 0) + 1
            if status == workload.expect:
                latencies.append(done - sent)
        if response.getheader("Connection", "").lower() == "close":
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.close()
    out["latencies"].extend(latencies)
    out["errors"] += errors
    for status, count in statuses.items():
        out["statuses"][status] = out["statuses"].get(status, 0) + count


def _process_main(
    port: int, workload: Workload, threads: int, times: tuple[float, float, float], queue: Any
) -> None:
    out: dict[str, Any] = {"latencies": [], "errors": 0, "statuses": {}}
    lock = threading.Lock()

    def run() -> None:
        mine: dict[str, Any] = {"latencies": [], "errors": 0, "statuses": {}}
        _thread_loop(port, workload, times, mine)
        with lock:
            out["latencies"].extend(mine["latencies"])
            out["errors"] += mine["errors"]
            for status, count in mine["statuses"].items():
                out["statuses"][status] = out["statuses"].get(status, 0) + count

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    queue.put(out)


def run_load(
    port: int, workload: Workload, *, clients: int, seconds: float, warmup: float = 1.0, processes: int = 0
) -> LoadResult:
    """Drive ``clients`` closed-loop connections for ``warmup + seconds``; measure the last ``seconds``."""
    processes = processes or max(1, min(clients, 4))
    per_process = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    start_at = time.time() + 0.5  # let every process spawn its threads first
    times = (start_at, start_at + warmup, start_at + warmup + seconds)
    workers = [
        context.Process(target=_process_main, args=(port, workload, count, times, queue), daemon=True)
        for count in per_process
        if count
    ]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=seconds + warmup + 120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    latencies = [value for result in results for value in result["latencies"]]
    statuses: dict[int, int] = {}
    for result in results:
        for status, count in result["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    return LoadResult(
        seconds=seconds, latencies=latencies, statuses=statuses, errors=sum(r["errors"] for r in results)
    )


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
