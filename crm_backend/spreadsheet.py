"""Cells of the CSV downloads that staff open in a spreadsheet: one rule for every report."""

from __future__ import annotations

#: A spreadsheet reads a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(text: str) -> str:
    """Names come from staff input: one that looks like a formula is kept as text with a quote."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text
