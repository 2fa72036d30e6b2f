"""gunicorn settings for `make run`; each may be overridden by FAPIAO_* variables."""

import os

os.umask(0o077)  # the master opens the access log before any worker loads the settings

bind = os.environ.get("FAPIAO_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("FAPIAO_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("FAPIAO_THREADS", "16"))
timeout = 30
graceful_timeout = 10
accesslog = os.environ.get("FAPIAO_ACCESS_LOG") or None
# The path without its query string, and no referer: a search such as ?buyer=<an ID number> must
# not put a party's data into the logs (DESIGN.md §8).
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss "%({x-request-id}o)s"'
raw_env = ["FAPIAO_WRITE_BATCHING=1"]
