"""Production settings are safe by default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "PORTAL_SECURE"}}
    return subprocess.run(  # noqa: S603 - fixed arguments
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_is_clean_with_debug_off_and_a_secret():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY="k" * 20 + "a-long-random-production-secret-value-xyz",
        METRICS_TOKEN="a-scrape-token",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_when_no_scraper_can_read_metrics():
    result = _manage(
        "check",
        "--deploy",
        DEBUG="0",
        SECRET_KEY="k" * 20 + "a-long-random-production-secret-value-xyz",
        METRICS_TOKEN="",
        METRICS_ALLOWED_NETWORKS="",
    )
    assert "observability.W001" in result.stderr + result.stdout
    assert "/metrics is closed" in result.stderr + result.stdout


def test_missing_secret_key_is_refused_when_debug_is_off():
    result = _manage("check", DEBUG="0", SECRET_KEY="")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
