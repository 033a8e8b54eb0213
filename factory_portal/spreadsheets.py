"""Safe cells for CSV and XLSX files people open in spreadsheets."""

from __future__ import annotations

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> object:
    """Text a spreadsheet would run as a formula is written as text (a leading apostrophe):
    ids and names come from clients and bills and are never trusted as formulas."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def xlsx_cell(value: object) -> object:
    """``cell`` for an XLSX sheet, whose XML cannot hold control characters other than tab, line
    feed and carriage return: each becomes U+FFFD. Client strings that reach a sheet (model names,
    run ids and templates from OTLP spans) may carry them, and openpyxl would refuse the whole
    workbook."""
    value = cell(value)
    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
    return value
