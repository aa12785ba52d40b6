"""The one CSV writer: cells a spreadsheet would run as a formula come out as text; numbers stay numbers."""

from __future__ import annotations

import csv
import io

import pytest

from awesomme.core.csv_writer import FORMULA_STARTS, csv_cell, write_csv, write_dict_csv


@pytest.mark.parametrize(
    "text", ["=1+2", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)", "\t=1", "\r=1", '=HYPERLINK("http://x")']
)
def test_formula_cells_get_a_leading_quote(text: str) -> None:
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize(
    ("value", "cell"),
    [(None, ""), (True, "true"), (False, "false"), (-3, "-3"), (-0.25, "-0.25"), (float("nan"), "nan"), ("a=b", "a=b")],
)
def test_other_cells_keep_their_values(value: object, cell: str) -> None:
    assert csv_cell(value) == cell


def test_every_cell_of_a_table_header_included_is_escaped() -> None:
    text = write_dict_csv(["=name", "value"], [{"=name": "@me", "value": -1.5}, {"value": "-x"}])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [["'=name", "value"], ["'@me", "-1.5"], ["", "'-x"]]
    assert not any(cell.startswith(FORMULA_STARTS) for row in rows for cell in row if cell not in ("-1.5",))


def test_line_terminator_is_the_callers() -> None:
    assert write_csv(["a"], [[1]], lineterminator="\r\n") == "a\r\n1\r\n"
