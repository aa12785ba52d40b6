"""The one CSV writer of every CSV answer: cells a spreadsheet would run as a formula are made text.

Spreadsheet programs run a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return as a formula
(CSV injection: ``=HYPERLINK(...)`` in a username or a label name). Such text cells get a leading ``'``, which
spreadsheets read as "this is text" and do not show. Numbers are written as numbers (``-0.5`` stays a number).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["FORMULA_STARTS", "csv_cell", "write_csv", "write_dict_csv"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """One cell's text: empty for None, ``true``/``false``, numbers as Python writes them, text made safe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value).lower()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def write_csv(header: Sequence[Any], rows: Iterable[Sequence[Any]], lineterminator: str = "\n") -> str:
    """The header line, then one line per row; every cell (the header's too) goes through ``csv_cell``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=lineterminator)
    writer.writerow([csv_cell(name) for name in header])
    writer.writerows([csv_cell(value) for value in row] for row in rows)
    return buffer.getvalue()


def write_dict_csv(columns: Sequence[str], rows: Iterable[Mapping[str, Any]], lineterminator: str = "\n") -> str:
    """``write_csv`` of mappings: the ``columns`` in order, a missing key as an empty cell."""
    return write_csv(columns, ([row.get(name) for name in columns] for row in rows), lineterminator)
