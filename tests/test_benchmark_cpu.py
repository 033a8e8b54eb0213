"""The benchmarks' CPU accounting (``benchmarks.common``) against a real PostgreSQL backend that
exits between two samples: its CPU before the first sample is not counted again."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from benchmarks.common import cpu_sample, cpu_used

BURN = "SELECT count(*) FROM generate_series(1, 8000000)"


def _gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return True
        time.sleep(0.01)
    return False


@pytest.mark.django_db
def test_a_backend_that_exits_between_samples_counts_only_its_time_in_between():
    settings = connection.settings_dict
    backend = psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        dbname=settings["NAME"],
        autocommit=True,
    )
    pid = backend.info.backend_pid
    comm = Path(f"/proc/{pid}/comm")
    if not comm.exists() or comm.read_text().strip() != "postgres":
        backend.close()
        pytest.skip("PostgreSQL runs where this machine's /proc cannot see it")
    backend.execute(BURN).fetchone()  # CPU spent before the first sample
    before = cpu_sample(None)
    burnt = before["postgres"][pid]
    assert burnt > 0.2, "the backend should have used some CPU before the first sample"
    backend.close()
    assert _gone(pid), "the backend did not exit"
    used = cpu_used(before, cpu_sample(None))
    # Only what every PostgreSQL process of the machine did in the few milliseconds between the
    # samples (another test worker's backends included), never the backend's earlier time again.
    assert used["postgres"] < burnt / 2, (used["postgres"], burnt)
