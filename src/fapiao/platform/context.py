"""What the request being served is, for logs and audit records: its id and the client's address.

Both live in context variables set by :class:`fapiao.platform.middleware.RequestIdMiddleware`; the
command line sets them once per invocation (:func:`cli_context`).  A write handed to the
group-commit writer thread carries a :func:`snapshot` along and runs inside :func:`bound` (it).
"""

from __future__ import annotations

import contextlib
import getpass
import socket
import uuid
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

_request_id: ContextVar[str] = ContextVar("request_id", default="")
_client_address: ContextVar[str] = ContextVar("client_address", default="")
_personal_data: ContextVar[bool] = ContextVar("personal_data", default=False)


def current_request_id() -> str:
    return _request_id.get()


def current_client_address() -> str:
    return _client_address.get()


def set_request_id(value: str) -> object:
    return _request_id.set(value)


def reset_request_id(token: object) -> None:
    _request_id.reset(token)  # type: ignore[arg-type]


def mark_personal_data() -> None:
    """The request being served handles personal data in the clear (it decrypted some, or shows
    what was typed): its answer must not be kept by any cache (``Cache-Control: no-store``)."""
    _personal_data.set(True)


@contextlib.contextmanager
def personal_data_watch() -> Iterator[Callable[[], bool]]:
    """Within: whether :func:`mark_personal_data` has been called (reset for each request, since a
    server thread serves one request after another)."""
    token = _personal_data.set(False)
    try:
        yield _personal_data.get
    finally:
        _personal_data.reset(token)


@dataclass(frozen=True)
class RequestContext:
    request_id: str = ""
    client_address: str = ""


def snapshot() -> RequestContext:
    return RequestContext(_request_id.get(), _client_address.get())


@contextlib.contextmanager
def bound(context: RequestContext) -> Iterator[None]:
    """Run with ``context`` as the current request (in another thread, say)."""
    request_token = _request_id.set(context.request_id)
    client_token = _client_address.set(context.client_address)
    try:
        yield
    finally:
        _client_address.reset(client_token)
        _request_id.reset(request_token)


def cli_context() -> RequestContext:
    """The command line's identity for audit records: ``cli-<hex>`` and ``cli:<os user>@<host>``."""
    try:
        who = getpass.getuser()
    except (OSError, KeyError):
        who = "?"
    context = RequestContext(f"cli-{uuid.uuid4().hex}", f"cli:{who}@{socket.gethostname()}"[:100])
    _request_id.set(context.request_id)
    _client_address.set(context.client_address)
    return context
