"""The repository works from a clone of itself alone: no code reads a folder beside it (the
workplace's common folder of seeds and data, which a user's clone does not have).

Fixtures the tests need travel inside the repository (``billing/tests/data``, ``usage/tests/data``)
with their attribution and licence.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# A path that climbs out of the repository into that sibling folder, written as a relative path
# string or built with pathlib from a parent of this file (both spellings are matched below).
OUTSIDE = re.compile(
    r"""\.\./shared\b|parents\[\d+\]\s*/\s*["']shared["']|parent\s*/\s*["']shared["']"""
)
CODE = {".py", ".sh", ".toml", ".cfg", ".ini"}
SKIPPED = {".git", ".venv", ".demo", "build", "staticfiles", "node_modules", "__pycache__"}


def _sources() -> list[Path]:
    """The project's code and scripts (not its virtual environment or build output)."""
    found = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [name for name in subfolders if name not in SKIPPED]
        here = Path(folder)
        script_folder = here.name in {"bin", ".ci"}
        found += [here / name for name in files if script_folder or Path(name).suffix in CODE]
    return found


def test_no_source_reads_outside_the_repository():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in _sources()
        if path.name != Path(__file__).name
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1)
        if OUTSIDE.search(line)
    ]
    assert offenders == []


def test_the_fixtures_travel_with_their_attribution():
    for folder, name in (
        ("billing/tests/data", "focus_sample_1.0.csv"),
        ("usage/tests/data", "otlp_example_trace.json"),
    ):
        assert (ROOT / folder / name).stat().st_size > 0
        notice = (ROOT / folder / "README.md").read_text()
        assert "Source:" in notice
        assert "Licence:" in notice
