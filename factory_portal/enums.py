"""Enumerated values as people and clients write them: one rule for every filter that takes a
fixed set of values (a run status, a grain, a sort, a severity), on the API and on the pages.

A value matches a member in any letter case and with surrounding spaces; what is returned is the
member as the portal spells it. It knows no app's values: callers pass theirs."""

from __future__ import annotations

from collections.abc import Iterable


def enum_canonical(value: str, allowed: Iterable[str]) -> str | None:
    """``value`` as the member of ``allowed`` it names in any letter case (``failed`` is
    ``Failed``), or None when it names none."""
    wanted = value.strip().casefold()
    for member in allowed:
        if member.casefold() == wanted:
            return member
    return None


def enum_choices_text(allowed: Iterable[str]) -> str:
    """The allowed values for a message: ``a, b or c``."""
    names = list(allowed)
    if len(names) < 2:
        return "".join(names)
    return f"{', '.join(names[:-1])} or {names[-1]}"
