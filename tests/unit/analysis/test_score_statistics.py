"""What one item's scores of one type look like: every category counted, or the numbers' spread."""

from __future__ import annotations

import pytest

from awesomme.analysis.score_statistics import distribution


def test_categories_are_all_counted_even_unused_ones() -> None:
    labels = {"0": "no symptoms", "1": "no disability", "2": "slight"}
    assert distribution("ordinal", labels, [0, "0", 2]) == {"0": 2, "1": 0, "2": 1}


def test_numbers_have_a_spread_and_one_number_no_deviation() -> None:
    spread = distribution("numeric", None, [1.0, 2.0, 6.0])
    assert spread["mean"] == pytest.approx(3.0) and spread["median"] == 2.0
    assert (spread["min"], spread["max"]) == (1.0, 6.0) and spread["sd"] == pytest.approx(2.6457513)
    assert distribution("numeric", None, [4])["sd"] is None


def test_text_and_no_numbers_have_no_distribution() -> None:
    assert distribution("text", None, ["fine"]) == {}
    assert distribution("numeric", None, []) == {}
