"""gunicorn settings for `make run`; each may be overridden by FAPIAO_* variables.

Metrics across workers: ``prometheus_client`` decides when it is first imported whether values
live in the process or in files under ``PROMETHEUS_MULTIPROC_DIR``, and the workers are forked
from this master.  So the directory is set here, before anything imports ``prometheus_client``:
``$FAPIAO_VAR_DIR/metrics``, emptied when the server starts (counts begin again at a restart,
which Prometheus' ``rate()`` expects); a worker that exits has its live gauges removed.
"""

import os
from pathlib import Path
from typing import Any

VAR_DIR = Path(os.environ.get("FAPIAO_VAR_DIR") or Path.cwd() / "var").resolve()
METRICS_DIR = VAR_DIR / "metrics"
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)

# After the variable is set: prometheus_client reads it when first imported.
from prometheus_client import multiprocess  # noqa: E402

from fapiao.platform.logging import JsonFormatter  # noqa: E402

os.umask(0o077)  # the master opens the access log before any worker loads the settings

bind = os.environ.get("FAPIAO_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("FAPIAO_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("FAPIAO_THREADS", "16"))
timeout = 30
graceful_timeout = 10
accesslog = os.environ.get("FAPIAO_ACCESS_LOG") or None
# No path, no query string and no referer: a path can hold a party's data as well as a query
# (/api/v1/invoices/<whatever was typed>, ?buyer=<an ID number>), and neither may reach the logs
# (docs/spec/security.md).  The request id leads to the application's JSON line (the route pattern).
access_log_format = '%(h)s %(t)s "%(m)s %(H)s" %(s)s %(b)s %(L)ss "%({x-request-id}o)s"'
raw_env = ["FAPIAO_WRITE_BATCHING=1"]

# gunicorn's own messages (worker started, exited, timed out) as JSON lines like the application's.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"structured": {"()": JsonFormatter}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
    "loggers": {"gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False}},
}


def on_starting(server: Any) -> None:
    """Begin with no values: remove what workers of an earlier run left in the metrics directory."""
    METRICS_DIR.mkdir(parents=True, exist_ok=True)
    for stale in METRICS_DIR.glob("*.db"):
        stale.unlink(missing_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    """A worker ended: its live gauges go; its counters stay in the totals."""
    multiprocess.mark_process_dead(worker.pid, str(METRICS_DIR))  # type: ignore[no-untyped-call]
