"""First run: bin/demo checks its database before the slow install, creates a missing one, and
says in one line what is wrong with one it cannot use (never a traceback)."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from psycopg import conninfo, sql

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[1]


def _server_conninfo(dbname: str) -> str:
    """The test server's connection string, naming another database."""
    params = connection.get_connection_params()
    keep = {k: v for k, v in params.items() if k in {"host", "port", "user", "password"} and v}
    return conninfo.make_conninfo(dbname=dbname, **keep)


def _run(script: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(  # noqa: S603 (the tests' own command lines)
        ["/bin/bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.django_db
def test_a_missing_database_on_a_reachable_server_is_created():
    name = f"fp_first_run_{uuid.uuid4().hex[:8]}"
    url = _server_conninfo(name)
    try:
        done = _run('source bin/lib.sh; postgres_ensure factory_portal; echo "ok"', url)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().endswith("ok")
        assert f"created database {name}" in done.stderr
        psycopg.connect(url).close()  # it is there now
        again = _run("source bin/lib.sh; postgres_ensure factory_portal", url)
        assert again.returncode == 0
        assert "created database" not in again.stderr
    finally:
        with psycopg.connect(_server_conninfo("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def test_demo_with_an_unreachable_database_stops_at_once_with_one_line():
    url = f"postgres://portal:not-shown@127.0.0.1:{free_port()}/factory_portal"
    done = _run("bin/demo", url)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "cannot connect to PostgreSQL at 127.0.0.1:" in errors[0]
    assert "not-shown" not in done.stderr  # the password never reaches the terminal
    assert "Migrating" not in done.stderr  # nothing ran after the check


def test_every_scheme_the_settings_accept_is_checked_and_no_password_is_echoed():
    port = free_port()
    for url in (
        f"pgsql://portal:s3cret@127.0.0.1:{port}/factory_portal",
        f"postgis://portal:s3cret@127.0.0.1:{port}/factory_portal",
    ):
        done = _run(f'"{ROOT}/.venv/bin/python" bin/database_ensure.py "$DATABASE_URL"', url)
        assert done.returncode == 1
        assert f"cannot connect to PostgreSQL at 127.0.0.1:{port}" in done.stderr  # understood
    unusable = _run(
        f'"{ROOT}/.venv/bin/python" bin/database_ensure.py "$DATABASE_URL"',
        "mysql+weird://portal:s3cret@host/db x=",
    )
    assert unusable.returncode == 1
    assert "is not a PostgreSQL URL" in unusable.stderr
    assert "s3cret" not in unusable.stderr
