"""Safe cells for CSV and XLSX files people open in spreadsheets."""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> object:
    """Text a spreadsheet would run as a formula is written as text (a leading apostrophe):
    ids and names come from clients and bills and are never trusted as formulas."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
