"""The protobuf wire format, read without building messages: how the OTLP receivers (traces,
logs, metrics) count the items of a body before decoding it, so that any input costs bounded
work. Pure: bytes in, offsets out."""

from __future__ import annotations

from collections.abc import Iterator


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
