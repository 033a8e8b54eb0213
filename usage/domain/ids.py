"""Ids chosen by clients (run, job and event ids): the one rule every ingest path applies, and how
an id is written in a URL (pure, no database, no request).

Any printable text is an id: slashes, ``%``, ``?``, ``#``, spaces, quotes and non-ASCII letters
included, up to ``MAX_ID_LENGTH`` characters once surrounding whitespace is removed. Refused:
control, format (e.g. bidirectional overrides) and separator characters other than the space,
which no page can show faithfully; ``.`` and ``..``, which browsers and HTTP clients remove from
every URL path (RFC 3986 dot segments); run ids that name a page under ``/runs/``, and run ids
ending in a route below a run (``/guard``).

In a URL an id is one path segment (``id_segment``): every ASCII character but the unreserved
``A-Z a-z 0-9 - . _ ~`` is percent-encoded, ``/`` included, so no browser or proxy sees a dot
segment or a double slash in it. Servers decode ``%2F`` before routing, so the routes match ids
with Django's ``path`` converter, and an id is the last part of its route but for the routes
below a run, whose endings no run id may have.
"""

from __future__ import annotations

import re
from urllib.parse import quote

MAX_ID_LENGTH = 128
DOT_SEGMENTS = frozenset({".", ".."})
# Fixed pages that ``/runs/<run_id>/`` would also match (the URL conf tests keep this current).
RESERVED_RUN_IDS = frozenset({"active"})
# Routes below a run (``/api/v1/runs/<run_id>/guard``): a run id ending so would be ambiguous.
RESERVED_RUN_SUFFIXES = ("/guard",)


def id_check(value: str, *, max_length: int = MAX_ID_LENGTH, run: bool = False) -> str:
    """``value`` as stored (surrounding whitespace removed), or ValueError saying what is wrong."""
    text = value.strip()
    if not text:
        raise ValueError("must be a non-empty string")
    if len(text) > max_length or not text.isprintable():
        raise ValueError(
            f"must be at most {max_length} printable characters (no control, format or line "
            "separator characters)"
        )
    if text in DOT_SEGMENTS:
        raise ValueError("cannot be '.' or '..': browsers and HTTP clients drop them from URLs")
    if run and text in RESERVED_RUN_IDS:
        raise ValueError(f"{text!r} is reserved: /runs/{text}/ is a page of the portal")
    if run and text.endswith(RESERVED_RUN_SUFFIXES):
        suffix = next(s for s in RESERVED_RUN_SUFFIXES if text.endswith(s))
        raise ValueError(f"cannot end with {suffix!r}: /api/v1/runs/<run id>{suffix} is an API")
    return text


def id_segment(value: str) -> str:
    """``value`` as one URL path segment: ASCII beyond the unreserved set percent-encoded,
    other characters kept (an IRI, as browsers send it: UTF-8, percent-encoded). Keeping them
    bounds a run link to 3 characters per id character, so it fits the 500 characters of a
    notification's link."""
    if _UNRESERVED.fullmatch(value):  # most ids: nothing to encode (a run list links 50)
        return value
    return "".join(c if ord(c) > 0x7F else quote(c, safe="") for c in value)


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")  # what ``quote`` never encodes


def run_path(run_id: str) -> str:
    """The path of the run's page."""
    return f"/runs/{id_segment(run_id)}/"
