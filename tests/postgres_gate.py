"""Exit 0 when the PostgreSQL test server answers, 1 to skip (laptop), 2 to fail (CI)."""

from __future__ import annotations

import os
import sys

import psycopg


def main(url: str) -> int:
    try:
        with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        if os.environ.get("CI") == "true":
            print(f"CI: PostgreSQL tests must run, but {url} is unreachable: {error}", file=sys.stderr)
            return 2
        print(f"SKIPPED: the PostgreSQL pass: no server at {url} ({error}). CI runs it.")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
