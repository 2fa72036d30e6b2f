"""``GET /metrics``: Prometheus' text format, behind ``FAPIAO_METRICS_TOKEN`` (docs/operations/monitoring.md).

The token is required whatever the client's address: behind a reverse proxy on the same host
every request comes from loopback, so an address proves nothing.  Without a token configured the
endpoint is switched off (404, saying so); it is never open.  The token is compared in constant
time (digests of equal length), so the comparison's time says nothing about it.

A scrape adds up every gunicorn worker's values (``prometheus_client``'s multiprocess mode, see
:mod:`fapiao.platform.metrics`) — or, outside gunicorn, this process's — and the readiness gauges
read at scrape time (:mod:`fapiao.ops.gauges`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from fapiao.core.errors import _
from fapiao.ops.gauges import ReadinessCollector
from fapiao.platform.metrics import multiprocess_dir

TEXT = "text/plain; charset=utf-8"
SWITCHED_OFF = _("Metrics are switched off: set FAPIAO_METRICS_TOKEN and scrape with that bearer token.")
TOKEN_NEEDED = _("Metrics need the token: send the header Authorization: Bearer <FAPIAO_METRICS_TOKEN>.")


class _ThisProcess:
    """This process's own registry (no gunicorn: tests, ``runserver``)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def scrape_registry() -> CollectorRegistry:
    """A registry for one scrape: every worker's counters and histograms, then the readiness gauges."""
    registry = CollectorRegistry(auto_describe=False)
    directory = multiprocess_dir()
    if directory:
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ThisProcess())
    registry.register(ReadinessCollector())
    return registry


def token_matches(header: str, expected: str) -> bool:
    """Is ``header`` ``Bearer <expected>``?  Compared in constant time."""
    scheme, _sep, given = header.partition(" ")
    if scheme.lower() != "bearer":
        given = ""
    given_digest = hashlib.sha256(given.strip().encode()).digest()
    expected_digest = hashlib.sha256(expected.encode()).digest()
    return hmac.compare_digest(given_digest, expected_digest) and bool(given.strip())


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """The metrics of every worker and the readiness gauges, for a scraper that holds the token."""
    expected = settings.FAPIAO_METRICS_TOKEN
    if not expected:
        return HttpResponse(gettext(SWITCHED_OFF) + "\n", status=404, content_type=TEXT)
    if not token_matches(request.headers.get("Authorization", ""), expected):
        response = HttpResponse(gettext(TOKEN_NEEDED) + "\n", status=401, content_type=TEXT)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    response = HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_PLAIN_0_0_4)
    response["Cache-Control"] = "no-store"
    return response
