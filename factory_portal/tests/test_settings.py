"""Production settings are safe by default; static files come from the installed packages."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from django.contrib.staticfiles import finders

ROOT = Path(__file__).resolve().parents[2]


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


def test_every_environment_variable_the_settings_read_is_in_the_readme_table():
    """The configuration table is the operator's reference: a variable the settings read and the
    table leaves out is a setting nobody can find."""
    root = Path(__file__).resolve().parents[2]
    source = (root / "factory_portal" / "settings.py").read_text()
    read = set(
        re.findall(
            r"""(?:env_int|env_bool|environ\.get|getenv)\(\s*["']([A-Z][A-Z0-9_]+)["']""", source
        )
    )
    readme = (root / "README.md").read_text()
    table = readme[readme.index("## Configuration") : readme.index("## Pages")]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    assert len(read) > 30  # the pattern still finds the settings' variables
    assert sorted(read - documented) == []


def test_plotly_is_served_from_the_installed_package():
    assert finders.find("vendor/plotly/plotly.min.js")
