"""Structured logs: one JSON document per line, carrying the request id.

A record may bring its own top-level fields in ``extra={"fields": {...}}`` (the request line of
:class:`fapiao.platform.middleware.RequestMetricsMiddleware`: user id, method, route, status,
duration) and a structured event in ``extra={"event": {...}}``.  Nothing here may hold a party's
sensitive data: routes are templates, never paths or query strings.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from fapiao.platform.context import current_request_id


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": current_request_id(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for name, value in fields.items():
                if name not in document or (name == "request_id" and value):
                    document[name] = value
        event = getattr(record, "event", None)
        if isinstance(event, dict):
            document["event"] = event
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False)
