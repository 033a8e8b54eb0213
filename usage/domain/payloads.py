"""Request bodies of the ingest API: JSON ``{"events": [...]}`` (or ``runs``) or NDJSON,
optionally gzip.

Pure functions; they raise ``PayloadError`` with the HTTP status and a precise message. Numbers
with a fraction are decoded as ``Decimal`` (never float), so client costs keep every digit.
"""

from __future__ import annotations

import json
import zlib
from decimal import Decimal
from typing import Any

JSON_TYPES = frozenset({"application/json"})
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl"})


class PayloadError(Exception):
    def __init__(self, status: int, message: str, errors: list[dict[str, object]] | None = None):
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors or []


def body_decompress(body: bytes, encoding: str, max_bytes: int) -> bytes:
    """Undo ``Content-Encoding: gzip`` (or ``deflate``) without inflating past ``max_bytes``."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise PayloadError(415, f"Content-Encoding {encoding!r} is not supported; use gzip.")
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        data = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise PayloadError(400, f"The body is not valid {encoding} data: {exc}.") from exc
    if len(data) > max_bytes or inflater.unconsumed_tail:
        raise PayloadError(413, f"The decompressed body exceeds {max_bytes:,} bytes.")
    return data


def _loads(text: bytes | str) -> Any:
    return json.loads(text, parse_float=Decimal)


def media_type(content_type: str) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``."""
    return content_type.split(";", 1)[0].strip().lower()


def items_decode(body: bytes, content_type: str, key: str) -> list[Any]:
    """The items of a body (not validated yet): ``{key: [...]}`` as JSON, or NDJSON lines."""
    content_type = media_type(content_type)
    if content_type in JSON_TYPES:
        try:
            document = _loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise PayloadError(400, f"The body is not valid JSON: {exc}.") from exc
        if not isinstance(document, dict) or not isinstance(document.get(key), list):
            raise PayloadError(400, f'Expected a JSON object {{"{key}": [...]}}.')
        extra = sorted(set(document) - {key})
        if extra:
            raise PayloadError(400, f"Unknown top-level field {extra[0]!r}; only {key!r}.")
        return document[key]
    if content_type in NDJSON_TYPES:
        items: list[Any] = []
        errors: list[dict[str, object]] = []
        for number, line in enumerate(body.splitlines()):
            if not line.strip():
                continue
            try:
                items.append(_loads(line))
            except (ValueError, UnicodeDecodeError, RecursionError) as exc:
                errors.append(
                    {
                        "index": len(items),
                        "field": "",
                        "message": f"line {number + 1} is not valid JSON: {exc}",
                    }
                )
                items.append(None)
        if errors:
            raise PayloadError(422, "Some lines are not valid JSON; nothing was stored.", errors)
        return items
    raise PayloadError(
        415,
        f"Content-Type {content_type or '(none)'!r} is not supported; send application/json"
        f' ({{"{key}": [...]}}) or application/x-ndjson (one item per line).',
    )
