"""What the OTLP receivers (traces, logs, metrics) share to decode a body: the protobuf wire
format, read without building messages (to count a body's items before decoding it, so that any
input costs bounded work), and the steps from bytes to a message with the same errors for every
signal. Pure: bytes in, offsets and messages out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message


class OtlpDecodeError(Exception):
    """A body that is not the OTLP message its media type says (a 400 for the client)."""


def wire_varint(body: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``body[pos:]`` and the position after it."""
    value = shift = 0
    while pos < len(body) and shift < 64:
        byte = body[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise OtlpDecodeError("the body is not an OTLP protobuf message: a truncated field")


def wire_fields(body: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(number, start, end) of each length-delimited field of the message in ``body[start:end]``,
    and (number, -1, -1) for every other field (nothing is copied)."""
    pos = start
    while pos < end:
        key, pos = wire_varint(body, pos)
        wire = key & 7
        value_start = value_end = -1
        if wire == 0:
            _, pos = wire_varint(body, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = wire_varint(body, pos)
            value_start, value_end = pos, pos + length
            pos = value_end
        else:
            raise OtlpDecodeError(f"the body is not an OTLP protobuf message: wire type {wire}")
        if pos > end:
            raise OtlpDecodeError("the body is not an OTLP protobuf message: a truncated field")
        yield key >> 3, value_start, value_end


def protobuf_parse(request: Message, body: bytes) -> None:
    """Fill ``request`` from a protobuf ``body`` (its items counted beforehand)."""
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise OtlpDecodeError(f"the body is not an OTLP protobuf message: {exc}") from exc


def json_kind(value: Any) -> str:
    if value is None:
        return "null"
    return {list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "a number")


def json_object(body: bytes, message: str) -> dict[str, Any]:
    """The JSON object in ``body`` (the OTLP/JSON form of ``message``), not yet a message."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise OtlpDecodeError(f"the body is not OTLP/JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise OtlpDecodeError(
            f"the body is not OTLP/JSON: it must be a JSON object (an {message}), "
            f"not {json_kind(document)}"
        )
    return document


def json_parse(document: dict[str, Any], request: Message) -> None:
    """Fill ``request`` from an OTLP/JSON ``document`` whose ids are already base64."""
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (ValueError, TypeError, json_format.ParseError, RecursionError) as exc:
        raise OtlpDecodeError(f"the body is not OTLP/JSON: {exc}") from exc
