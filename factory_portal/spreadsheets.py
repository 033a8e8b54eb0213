"""Safe cells for CSV and XLSX files people open in spreadsheets."""

from __future__ import annotations

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ESCAPED_STARTS = (*FORMULA_STARTS, "'")


def cell(value: object) -> object:
    """Text a spreadsheet would run as a formula is written as text (a leading apostrophe):
    ids and names come from clients and bills and are never trusted as formulas. Text that
    starts with an apostrophe gets one more, so dropping the first apostrophe of a cell that has
    one always gives the original text back. Control characters (which no worksheet can hold)
    become spaces."""
    if not isinstance(value, str):
        return value
    value = ILLEGAL_CHARACTERS_RE.sub(" ", value)
    return "'" + value if value.startswith(ESCAPED_STARTS) else value
