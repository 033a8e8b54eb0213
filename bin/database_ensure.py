"""Make sure the PostgreSQL database named by a URL exists, before anything slow happens.

Usage: python bin/database_ensure.py DATABASE_URL

- the database exists: exit 0, silently;
- the server is reachable but the database is missing: create it (as the user in the URL), say so
  in one line, exit 0;
- anything else (server unreachable, login refused, no right to create databases): one line on
  standard error saying what failed and what to do, exit 1. Never a traceback, never the password.

Needs only psycopg, which bin/lib.sh installs before the project's other dependencies.
"""

from __future__ import annotations

import sys

import psycopg
from psycopg import conninfo, sql


def _where(params: dict[str, str]) -> str:
    host = params.get("host") or "the local socket"
    port = params.get("port") or "5432"
    return f"{host}:{port}" if not host.startswith("/") else host


def _first_line(error: Exception) -> str:
    text = str(error).strip().removeprefix("connection failed: ").splitlines()
    return text[0] if text else type(error).__name__


# The PostgreSQL schemes the settings accept (dj-database-url); libpq knows only the first two.
SCHEMES = ("postgres", "postgresql", "pgsql", "postgis", "timescale", "timescalegis")


def libpq_url(url: str) -> str:
    """``url`` with a scheme libpq understands (``pgsql://…`` → ``postgresql://…``)."""
    scheme, separator, rest = url.partition("://")
    if separator and scheme.lower() in SCHEMES:
        return f"postgresql://{rest}"
    return url


def database_ensure(url: str) -> str | None:
    """Return None when the database is there (or was created), else a one-line reason."""
    url = libpq_url(url)
    try:
        params = conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        # libpq's message quotes the whole string, password included: never echo it.
        return (
            "DATABASE_URL is not a PostgreSQL URL "
            "(expected postgres://user[:password]@host[:port]/name)"
        )
    name = str(params.get("dbname") or params.get("user") or "postgres")
    where = _where({k: str(v) for k, v in params.items() if v is not None})
    try:
        psycopg.connect(url, connect_timeout=5).close()
        return None
    except psycopg.OperationalError as error:
        failure = f"cannot connect to PostgreSQL at {where} (DATABASE_URL): {_first_line(error)}"
    # Is the server there, with only the database missing? Ask its maintenance database.
    maintenance = conninfo.make_conninfo(url, dbname="postgres")
    try:
        with psycopg.connect(maintenance, autocommit=True, connect_timeout=5) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                return failure  # the database is there: something else is wrong
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError:
        return failure  # the server itself cannot be reached or refuses this login
    except psycopg.Error as error:
        return (
            f"database {name!r} does not exist on {where} and could not be created "
            f"({_first_line(error)}): create it, or point DATABASE_URL at an existing one"
        )
    print(f"created database {name} on {where}", file=sys.stderr)
    return None


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: database_ensure.py DATABASE_URL", file=sys.stderr)
        return 2
    reason = database_ensure(sys.argv[1])
    if reason is not None:
        print(f"error: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
