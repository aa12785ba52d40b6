"""How an import names and numbers its segments, and whom it declares drew it."""

from __future__ import annotations

import pytest
from highdicom.seg import SegmentAlgorithmTypeValues

from awesomme.core.errors import InvalidInput
from awesomme.services.segmentations import ImportRequest, _algorithm_type, _reader, _segment_names


def test_names_come_from_the_callers_map_then_the_single_label_then_the_file() -> None:
    request = ImportRequest(series_uid="1.2", filename="x.nii.gz", label_names={"3": "bone", "Lesion": "tumour"})
    assert _segment_names({1: "Lesion"}, [1, 3, 7], request) == {1: "tumour", 3: "bone", 7: "Segment 7"}
    single = ImportRequest(series_uid="1.2", filename="x.nii.gz", segment_label="tumour")
    assert _segment_names({}, [5], single) == {5: "tumour"}
    assert _segment_names({5: "GTV"}, [5], single) == {5: "tumour"}
    assert _segment_names({5: "GTV"}, [5], ImportRequest(series_uid="1.2", filename="x")) == {5: "GTV"}


def test_algorithm_types_are_highdicoms_and_others_are_refused() -> None:
    assert ImportRequest(series_uid="1.2", filename="x").algorithm_type == "MANUAL"
    assert _algorithm_type("SEMIAUTOMATIC") is SegmentAlgorithmTypeValues.SEMIAUTOMATIC
    with pytest.raises(InvalidInput, match="algorithm_type must be one of"):
        _algorithm_type("GUESSED")


def test_a_declared_reader_is_trimmed_blank_means_none_and_a_backslash_is_refused() -> None:
    assert _reader("  Doe^Jane ") == "Doe^Jane"
    assert _reader("   ") is None
    for bad in ("Doe\\Jane", "Doe\nJane"):
        with pytest.raises(InvalidInput, match="reader"):
            _reader(bad)
