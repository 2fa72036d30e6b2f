"""libpq multi-host database URLs (``postgresql://h1:p1,h2:p2/fapiao?target_session_attrs=read-write``).

``dj_database_url`` refuses a URL that names several hosts (``urllib`` cannot read its port), so
such a URL is parsed here into the connection settings Django's PostgreSQL backend passes on to
psycopg and libpq unchanged: ``HOST="h1,h2"``, ``PORT="p1,p2"``, and the query parameters as
``OPTIONS``.  libpq then tries the hosts in order and, with ``target_session_attrs=read-write``,
keeps the first one that accepts writes: after a failover that is the new primary.

Pure Python: the settings module calls it before Django is set up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

SCHEMES = frozenset({"postgres", "postgresql", "pgsql"})
DEFAULT_PORT = "5432"


class DatabaseUrlError(ValueError):
    """The database URL cannot be read."""


@dataclass(frozen=True)
class MultiHostUrl:
    hosts: tuple[str, ...]
    ports: tuple[str, ...]
    name: str
    user: str = ""
    password: str = ""
    options: dict[str, str] = field(default_factory=dict)

    def django_settings(self) -> dict[str, object]:
        """The ``DATABASES`` entry for Django's PostgreSQL backend."""
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": self.name,
            "USER": self.user,
            "PASSWORD": self.password,
            "HOST": ",".join(self.hosts),
            "PORT": ",".join(self.ports),
            "OPTIONS": dict(self.options),
        }


def _host_and_port(item: str, url: str) -> tuple[str, str]:
    if item.startswith("["):  # [IPv6]:port
        host, bracket, rest = item[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise DatabaseUrlError(f"cannot read the host {item!r} in the database URL")
        port = rest[1:]
    else:
        host, _colon, port = item.partition(":")
    if not host:
        raise DatabaseUrlError(f"an empty host in the database URL {_redacted(url)}")
    if port and not port.isdigit():
        raise DatabaseUrlError(f"the port {port!r} in the database URL is not a number")
    return unquote(host), port or DEFAULT_PORT


def _redacted(url: str) -> str:
    scheme, _sep, rest = url.partition("://")
    userinfo, at, hosts = rest.partition("@")
    if at and ":" in userinfo:
        return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{hosts}"
    return url


def parse_multi_host(url: str) -> MultiHostUrl | None:
    """The URL's parts when it is a PostgreSQL URL naming several hosts, else None (one host, or
    another database: ``dj_database_url`` reads those)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        return None
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    netloc, tail = rest[:end], rest[end:]
    userinfo, at, hostlist = netloc.rpartition("@")
    if "," not in hostlist:
        return None
    pairs = [_host_and_port(item, url) for item in hostlist.split(",")]
    path, _q, query = tail.partition("?")
    name = unquote(path.lstrip("/"))
    if not name:
        raise DatabaseUrlError(f"the database URL {_redacted(url)} names no database")
    user, _colon, password = userinfo.partition(":") if at else ("", "", "")
    return MultiHostUrl(
        hosts=tuple(host for host, _ in pairs),
        ports=tuple(port for _, port in pairs),
        name=name,
        user=unquote(user),
        password=unquote(password),
        options=dict(parse_qsl(query, keep_blank_values=True)),
    )
