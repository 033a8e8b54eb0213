"""Request bodies of the ingest API: JSON ``{"events": [...]}`` (or ``runs``) or NDJSON,
optionally gzip.

Pure functions; they raise ``PayloadError`` with the HTTP status and a precise message. Numbers
with a fraction are decoded as ``Decimal`` (never float), so client costs keep every digit.
"""

from __future__ import annotations

import io
import json
import zlib
from decimal import Decimal
from typing import Any

from factory_portal.error_lists import ErrorList

JSON_TYPES = frozenset({"application/json"})
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl"})


class PayloadError(Exception):
    def __init__(
        self, status: int, message: str, errors: ErrorList[dict[str, object]] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.errors: ErrorList[dict[str, object]] = errors or ErrorList()


# Members of a gzip body at most: each costs a decompressor; block compressors (bgzip) write
# one per 64 KiB, so a full 16 MiB body has about 256.
MAX_GZIP_MEMBERS = 4096
_INFLATE_CHUNK = 64 * 1024  # input fed at a time: what is left after a member is at most this


def body_decompress(body: bytes, encoding: str, max_bytes: int) -> bytes:
    """Undo ``Content-Encoding: gzip`` (or ``deflate``) without inflating past ``max_bytes``.
    A gzip body of several members is their concatenation (RFC 1952, as ``gzip -d`` reads it);
    a stream cut short or followed by other bytes is refused (a review found the members after
    the first, and a truncated stream, dropped silently: 200 with part of the batch). The input
    is fed in slices, so the bytes after a member (zlib's ``unused_data``, a copy) are at most
    one slice: the work is linear in the body, however many members it has."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise PayloadError(415, f"Content-Encoding {encoding!r} is not supported; use gzip.")
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    view = memoryview(body)
    parts: list[bytes] = []
    size = position = 0
    members = 1
    inflater = zlib.decompressobj(wbits)
    carried = b""  # what followed the last member's end in its slice
    while carried or position < len(view):
        if carried:
            chunk: bytes | memoryview = carried
            carried = b""
        else:
            chunk = view[position : position + _INFLATE_CHUNK]
            position += len(chunk)
        if inflater.eof:  # the previous member ended: more bytes are another member
            if encoding == "deflate":
                raise PayloadError(400, "The body has bytes after the end of its deflate data.")
            members += 1
            if members > MAX_GZIP_MEMBERS:
                raise PayloadError(
                    400,
                    f"The body has more than {MAX_GZIP_MEMBERS:,} gzip members: compress it as"
                    " one.",
                )
            inflater = zlib.decompressobj(wbits)
        try:
            data = inflater.decompress(chunk, max_bytes + 1 - size)
        except zlib.error as exc:
            raise PayloadError(400, f"The body is not valid {encoding} data: {exc}.") from exc
        size += len(data)
        if size > max_bytes or inflater.unconsumed_tail:
            raise PayloadError(413, f"The decompressed body exceeds {max_bytes:,} bytes.")
        parts.append(data)
        if inflater.eof:
            carried = inflater.unused_data
    if not inflater.eof:
        raise PayloadError(400, f"The {encoding} data ends before its end: the body is cut short.")
    return b"".join(parts)


DECODE_ERRORS = (ValueError, UnicodeDecodeError, RecursionError)


def _loads(text: bytes | str) -> Any:
    return json.loads(text, parse_float=Decimal)


def media_type(content_type: str) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``."""
    return content_type.split(";", 1)[0].strip().lower()


class TooManyItems(PayloadError):
    def __init__(self, key: str, max_items: int) -> None:
        super().__init__(
            413, f"At most {max_items:,} {key} per request; the body has more. Split the batch."
        )


def json_values_check(body: bytes, max_values: int) -> None:
    """Refuse (413) a JSON or NDJSON body that could decode into more than ``max_values``
    values, before decoding it: the memory of decoding is then bounded by the values, not only by
    the bytes (16 MiB of ``[{},{},…]`` is millions of Python objects, over 400 MiB).

    Every value after the first in a container follows a comma, every key is followed by a colon
    and every container opens with a bracket, so their count bounds the values from above
    (punctuation inside strings counts too: real batches stay far below the limit)."""
    upper = sum(body.count(mark) for mark in (b",", b":", b"[", b"{")) + 1
    if upper > max_values:
        raise PayloadError(
            413,
            f"The body holds more than {max_values:,} JSON values (counted before decoding); "
            "split the batch.",
        )


def items_decode(
    body: bytes, content_type: str, key: str, max_items: int, max_values: int | None = None
) -> list[Any]:
    """The items of a body (not validated yet): ``{key: [...]}`` as JSON, or NDJSON lines.

    More than ``max_items`` items is a 413; NDJSON reading stops at line ``max_items + 1``, so
    the work and the listed errors are bounded by the item limit, not by the lines a body holds.
    More than ``max_values`` JSON values (``json_values_check``; the API passes
    ``INGEST_MAX_JSON_VALUES``) is a 413 before any decoding."""
    content_type = media_type(content_type)
    if max_values is not None and content_type in JSON_TYPES | NDJSON_TYPES:
        json_values_check(body, max_values)
    if content_type in JSON_TYPES:
        return _json_items(body, key, max_items)
    if content_type in NDJSON_TYPES:
        return _ndjson_items(body, key, max_items)
    raise PayloadError(
        415,
        f"Content-Type {content_type or '(none)'!r} is not supported; send application/json"
        f' ({{"{key}": [...]}}) or application/x-ndjson (one item per line).',
    )


def _json_items(body: bytes, key: str, max_items: int) -> list[Any]:
    """``{key: [...]}`` decoded whole by the C decoder, whose memory is bounded by the body
    limit. Decoding item by item would halve the speed of every batch and still not bound the
    memory: a single item can nest any number of values."""
    try:
        document = _loads(body)
    except DECODE_ERRORS as exc:
        raise PayloadError(400, f"The body is not valid JSON: {exc}.") from exc
    items = document.get(key) if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise PayloadError(400, f'Expected a JSON object {{"{key}": [...]}}.')
    extra = sorted(set(document) - {key})
    if extra:
        raise PayloadError(400, f"Unknown top-level field {extra[0]!r}; only {key!r}.")
    if len(items) > max_items:
        raise TooManyItems(key, max_items)
    return items


def _ndjson_items(body: bytes, key: str, max_items: int) -> list[Any]:
    """One item per line (``\n`` or ``\r\n``); blank lines are skipped. Lines that are not JSON
    are listed (bounded) in a 422."""
    items: list[Any] = []
    errors: ErrorList[dict[str, object]] = ErrorList()
    for number, line in enumerate(io.BytesIO(body), start=1):
        if not line.strip():
            continue
        if len(items) == max_items:
            raise TooManyItems(key, max_items)
        try:
            items.append(_loads(line))
        except DECODE_ERRORS as exc:
            errors.add(
                {
                    "index": len(items),
                    "field": "",
                    "message": f"line {number} is not valid JSON: {exc}",
                }
            )
            items.append(None)
    if errors:
        raise PayloadError(
            422,
            f"{errors.total:,} of {len(items):,} lines are not valid JSON; nothing was stored.",
            errors,
        )
    return items
