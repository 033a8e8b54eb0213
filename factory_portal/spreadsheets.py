"""Safe cells for CSV and XLSX files people open in spreadsheets."""

from __future__ import annotations

import re

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


# A ";" before a formula start (or an apostrophe): where the list separator is ";" (German,
# French, ... Excel), a double-clicked CSV is split there, inside a comma-separated field.
_SEMICOLON_CELL = re.compile(r";(?=[=+\-@\t\r'])")


def csv_cell(value: object) -> object:
    """``cell`` for a CSV file: also each text after a ";" that a spreadsheet splitting on ";"
    would read as a formula gets its apostrophe (``a;=1+1`` -> ``a;'=1+1``), and one after a
    ";" that has one gets one more, so dropping the apostrophe after each ";" (and the first)
    gives the text back (a review found ``=1+1`` as a cell of a run id in a ";" locale)."""
    value = cell(value)
    if not isinstance(value, str) or ";" not in value:
        return value
    return _SEMICOLON_CELL.sub(";'", value)
