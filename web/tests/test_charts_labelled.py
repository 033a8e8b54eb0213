"""Every chart says what it shows to a screen reader: a page's chart had the label "Chart"
(a UX review found five)."""

from __future__ import annotations

import re
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def test_every_chart_include_names_what_it_shows():
    includes = [
        (path.relative_to(TEMPLATES), match)
        for path in TEMPLATES.rglob("*.html")
        for match in re.findall(r'{% include "chart\.html" with [^%]*%}', path.read_text())
    ]
    assert len(includes) >= 14
    unlabelled = [(str(p), m) for p, m in includes if " label=" not in m]
    assert unlabelled == []
    assert "default:'Chart'" not in (TEMPLATES / "chart.html").read_text()
