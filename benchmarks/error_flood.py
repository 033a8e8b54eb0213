"""Work an ingest body costs before it is refused: time, answer size and peak memory.

Usage:
    .venv/bin/python benchmarks/error_flood.py

Each case runs in a fresh process through the ingest view's decoding path (``body_decompress``,
``items_decode``, then the problem answer serialized as the view does), without a database:
- a ~2 KB gzip NDJSON body of a million invalid lines (issue 13, item 9);
- a ~16 KB gzip JSON body ``{"events": [[], [], ...]}`` of 5.5 million tiny items;
- 10,000 invalid NDJSON lines (a full batch, every line bad);
- a gzip bomb: 200 MiB of zeros in about 200 KB (sent as NDJSON).
Prints, per case, the status, milliseconds, answer bytes and the peak RSS growth in MiB.
Run it on an older commit to compare (the script copes with the older ``items_decode``).
"""

from __future__ import annotations

import gzip
import inspect
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MAX_ITEMS = 10_000
MAX_BYTES = 16 * 1024 * 1024


def _bomb() -> bytes:
    deflater = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"\0" * (1 << 20)
    return b"".join(deflater.compress(chunk) for _ in range(200)) + deflater.flush()


CASES = {
    "ndjson_million_invalid_lines": lambda: gzip.compress(b"x\n" * 1_000_000, 9),
    "json_5m_tiny_items": lambda: gzip.compress(
        b'{"events": [' + b"[]," * (MAX_BYTES // 3 - 10) + b"[]]}", 9
    ),
    "ndjson_10000_invalid_lines": lambda: gzip.compress(b"{oops\n" * MAX_ITEMS),
    "ndjson_gzip_bomb_200mib": _bomb,
}
CONTENT_TYPES = {"ndjson": "application/x-ndjson", "json": "application/json"}


def _rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _answer(status: int, title: str, detail: str, extra: dict | None = None) -> bytes:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return json.dumps({**body, **(extra or {})}).encode()


def _one(case: str, path: Path) -> None:
    from usage.domain.payloads import PayloadError, body_decompress, items_decode

    packed, kind = path.read_bytes(), case.split("_", 1)[0]
    bounded = "max_items" in inspect.signature(items_decode).parameters
    before = _rss_mib()
    started = time.perf_counter()
    try:
        body = body_decompress(packed, "gzip", MAX_BYTES)
        args = (body, CONTENT_TYPES[kind], "events")
        items = items_decode(*args, MAX_ITEMS) if bounded else items_decode(*args)
        if len(items) > MAX_ITEMS:
            status, answer = 413, _answer(413, "Too many items", f"got {len(items):,}")
        else:
            status, answer = 200, b"{}"
    except PayloadError as exc:
        status = exc.status
        if exc.errors:
            members = (
                exc.errors.problem_members()
                if hasattr(exc.errors, "problem_members")
                else {"errors": exc.errors}
            )
            answer = _answer(status, "Invalid items", exc.message, members)
        else:
            answer = _answer(status, "Unusable body", exc.message)
    elapsed = (time.perf_counter() - started) * 1000
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(
        f"{case:32} gzip {len(packed):>8,} B  status {status}  {elapsed:8.1f} ms  "
        f"answer {len(answer):>12,} B  peak RSS +{max(0.0, peak - before):7.1f} MiB"
    )


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--case":
        _one(sys.argv[2], Path(sys.argv[3]))
        return
    with tempfile.TemporaryDirectory(prefix="error-flood-") as folder:
        for case, make in CASES.items():
            path = Path(folder) / case
            path.write_bytes(make())
            # A fresh process per case: the body is built here, so its peak RSS is the request's.
            subprocess.run([sys.executable, __file__, "--case", case, str(path)], check=True)  # noqa: S603


if __name__ == "__main__":
    main()
