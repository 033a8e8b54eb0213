"""Lists of problems shown to a client, bounded: the first ``MAX_LISTED_ERRORS`` and a count.

Every answer that lists problems (a 422 of the ingest API, a refused FOCUS file, the message of an
OTLP ``partial_success``) goes through ``ErrorList``, so that no input, however many bad items it
holds, makes an answer (or the memory behind it) grow past the limit. It keeps errors as they
come; it does not sort, render or decide what an error is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

MAX_LISTED_ERRORS = 100

T = TypeVar("T")


class ErrorList(Generic[T]):
    """The first ``limit`` errors added, and how many were added in all."""

    __slots__ = ("limit", "listed", "total")

    def __init__(self, errors: Iterable[T] = (), *, limit: int = MAX_LISTED_ERRORS) -> None:
        self.limit = limit
        self.listed: list[T] = []
        self.total = 0
        for error in errors:
            self.add(error)

    def add(self, error: T) -> None:
        self.total += 1
        if len(self.listed) < self.limit:
            self.listed.append(error)

    def __bool__(self) -> bool:
        return self.total > 0

    @property
    def omitted(self) -> int:
        return self.total - len(self.listed)

    def problem_members(self, render: Callable[[T], Any] = lambda e: e) -> dict[str, Any]:
        """The ``errors`` (at most ``limit``) and ``errors_total`` members of a problem answer."""
        return {"errors": [render(e) for e in self.listed], "errors_total": self.total}

    def listed_note(self) -> str:
        """``""``, or a sentence saying that only the first errors are listed."""
        if not self.omitted:
            return ""
        return f"The first {len(self.listed):,} of {self.total:,} problems are listed."

    def sentence(self, render: Callable[[T], str] = str, separator: str = "; ") -> str:
        """The listed errors joined, then ``and N more`` when some were left out."""
        parts = [render(e) for e in self.listed]
        if self.omitted:
            parts.append(f"and {self.omitted:,} more")
        return separator.join(parts)


_DROPPED = object()


def errors_bounded(errors: Any, limit: int = MAX_LISTED_ERRORS) -> tuple[Any, int]:
    """Nested messages as DRF reports them (``{field: [message]}``, ``{index: {field: [...]}}``)
    with only the first ``limit`` messages kept, in the same shape; and how many there are."""
    counted: ErrorList[None] = ErrorList(limit=limit)

    def walk(node: Any) -> Any:
        if isinstance(node, Mapping):
            kept = {key: walk(value) for key, value in node.items()}
            pruned = {key: value for key, value in kept.items() if value is not _DROPPED}
            return pruned if pruned or not kept else _DROPPED
        if isinstance(node, list | tuple):
            kept_items = [walk(value) for value in node]
            pruned_items = [value for value in kept_items if value is not _DROPPED]
            return pruned_items if pruned_items or not kept_items else _DROPPED
        counted.add(None)
        return node if counted.total <= limit else _DROPPED

    bounded = walk(errors)
    return ({} if bounded is _DROPPED else bounded), counted.total
