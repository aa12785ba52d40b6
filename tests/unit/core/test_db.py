"""Row ids from user input: what can name a row, and what cannot (never an overflow in the driver)."""

from __future__ import annotations

import pytest

from awesomme.core.db import SQL_INT_MAX, row_id


@pytest.mark.parametrize(("reference", "expected"), [("1", 1), ("42", 42), (7, 7), (str(SQL_INT_MAX), SQL_INT_MAX)])
def test_ids_a_row_can_have(reference: str | int, expected: int) -> None:
    assert row_id(reference) == expected


@pytest.mark.parametrize(
    "reference", ["0", "0" * 3, "-1", -5, 0, str(SQL_INT_MAX + 1), "9" * 30, 10**40, "²", "١٢", "1.5", " 1", "", "abc"]
)
def test_anything_else_names_no_row(reference: str | int) -> None:
    assert row_id(reference) is None
