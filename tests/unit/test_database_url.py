"""libpq multi-host database URLs become Django settings libpq reads unchanged."""

from __future__ import annotations

import pytest

from fapiao.core.database_url import DatabaseUrlError, parse_multi_host


def test_several_hosts_become_comma_separated_host_and_port() -> None:
    url = "postgresql://fapiao:s%40cret@db1:5432,db2:5433,db3/fapiao?target_session_attrs=read-write&sslmode=require"
    parsed = parse_multi_host(url)
    assert parsed is not None
    assert parsed.django_settings() == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "fapiao",
        "USER": "fapiao",
        "PASSWORD": "s@cret",
        "HOST": "db1,db2,db3",
        "PORT": "5432,5433,5432",
        "OPTIONS": {"target_session_attrs": "read-write", "sslmode": "require"},
    }


def test_ipv6_hosts_in_brackets() -> None:
    parsed = parse_multi_host("postgres://[::1]:6001,[fd00::2]/db")
    assert parsed is not None
    assert (parsed.hosts, parsed.ports, parsed.user) == (("::1", "fd00::2"), ("6001", "5432"), "")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://fapiao@db1:5432/fapiao",  # one host: dj_database_url reads it
        "sqlite:////var/fapiao.sqlite3",
        "mysql://a,b/db",
    ],
)
def test_other_urls_are_left_to_dj_database_url(url: str) -> None:
    assert parse_multi_host(url) is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("postgresql://u:pw@db1,db2", "names no database"),
        ("postgresql://db1:54x2,db2/fapiao", "not a number"),
        ("postgresql://db1,,db2/fapiao", "empty host"),
        ("postgresql://[::1,db2/fapiao", "cannot read the host"),
    ],
)
def test_unreadable_urls_say_why(url: str, problem: str) -> None:
    with pytest.raises(DatabaseUrlError, match=problem):
        parse_multi_host(url)


def test_the_password_is_not_in_the_message() -> None:
    with pytest.raises(DatabaseUrlError) as caught:
        parse_multi_host("postgresql://u:topsecret@db1,db2")
    assert "topsecret" not in str(caught.value)
