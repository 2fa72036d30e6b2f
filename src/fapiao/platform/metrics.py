"""The metrics every app updates as it works, in Prometheus' terms (``GET /metrics``, monitoring.md).

The objects below live in each process.  Under gunicorn, ``fapiao.gunicorn_conf`` points
``PROMETHEUS_MULTIPROC_DIR`` at ``$FAPIAO_VAR_DIR/metrics`` before anything imports
``prometheus_client``: each worker then keeps its values in a memory-mapped file there, and the
``/metrics`` view (``fapiao.ops.metrics``) adds up every worker's file, so a count is right
whichever worker served the requests.  Without that variable (tests, the command line) the values
stay in the process's default registry.

Labels never carry personal data, and their values come from fixed sets: a route *template*
(``/api/v1/invoices/<number>``, never the path), a method, a status code, a reason code.
Nothing is labelled by merchant, user or invoice.
"""

from __future__ import annotations

import os
from typing import Any, TypeVar

from django.http import HttpResponse
from prometheus_client import Counter, Histogram

# Latency buckets from 2.5 ms (a lookup) to 10 s (a write stuck behind a lock).
SECONDS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "fapiao_http_requests",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "fapiao_http_request_duration_seconds",
    "Time from receiving a request to handing back its response, by route template and method.",
    ["route", "method"],
    buckets=SECONDS,
)
UNAVAILABLE = Counter(
    "fapiao_http_unavailable_responses",
    "503 answers (nothing was saved, the client retries), by reason.",
    ["reason"],
)
INVOICES_ISSUED = Counter("fapiao_invoices_issued", "Blue invoices issued (committed; retries not counted).")
INVOICES_RED_LETTERED = Counter(
    "fapiao_invoices_red_lettered", "Red invoices issued against a blue one (committed; retries not counted)."
)
GROUP_COMMIT_BATCH = Histogram(
    "fapiao_group_commit_batch_writes",
    "Writes carried by one group commit (one transaction, one fsync).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
GROUP_COMMIT_DURATION = Histogram(
    "fapiao_group_commit_duration_seconds",
    "Time one group commit takes: waiting for the writer lock, running its writes, committing.",
    buckets=SECONDS,
)
LEDGER_APPEND = Histogram(
    "fapiao_ledger_append_duration_seconds",
    "Time a commit spends on its ledger appends: Merkle nodes, the signed head and the receipts.",
    buckets=SECONDS,
)
LEDGER_ENTRIES = Counter("fapiao_ledger_entries_appended", "Ledger entries appended (committed or not).")
SIGNIN_FAILURES = Counter(
    "fapiao_signin_failures", "Failed sign-ins: wrong passwords and wrong second-factor codes."
)
SIGNIN_LOCKOUTS = Counter("fapiao_signin_lockouts", "Usernames locked out after too many failed sign-ins.")

UNMATCHED_ROUTE = "unmatched"  # no URL pattern: a 404, or a response given before URL resolution
STATIC_ROUTE = "static"  # files served by whitenoise


def multiprocess_dir() -> str | None:
    """Where the workers keep their values (gunicorn), or None: this process's registry."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


Answer = TypeVar("Answer", bound=HttpResponse)


def mark_unavailable(response: Answer, reason: str) -> Answer:
    """Name why this 503 was given (a fixed code such as ``database_unavailable``), for the count."""
    response.unavailable_reason = reason  # type: ignore[attr-defined]
    return response


# (route, method, status) -> that request counter and latency histogram: ``labels()`` validates and
# locks on every call, a third of the middleware's cost.  Bounded like the labels themselves.
_request_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(route: str, method: str, response: HttpResponse, seconds: float) -> None:
    status = response.status_code
    key = (route, method, status)
    series = _request_series.get(key)
    if series is None:
        series = _request_series.setdefault(
            key, (HTTP_REQUESTS.labels(route, method, str(status)), HTTP_DURATION.labels(route, method))
        )
    count, duration = series
    count.inc()
    duration.observe(seconds)
    if status == 503:
        UNAVAILABLE.labels(getattr(response, "unavailable_reason", "other")).inc()


def signin_failed(sender: Any, **kwargs: Any) -> None:
    SIGNIN_FAILURES.inc()


def locked_out(sender: Any, **kwargs: Any) -> None:
    SIGNIN_LOCKOUTS.inc()
