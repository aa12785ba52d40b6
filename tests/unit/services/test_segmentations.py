"""How an import names and numbers its segments."""

from __future__ import annotations

import numpy as np
import pytest

from awesomme.core.errors import InvalidInput
from awesomme.services.segmentations import ImportRequest, _renumbered, _segment_names


def test_names_come_from_the_callers_map_then_the_single_label_then_the_file() -> None:
    request = ImportRequest(series_uid="1.2", filename="x.nii.gz", label_names={"3": "bone", "Lesion": "tumour"})
    assert _segment_names({1: "Lesion"}, [1, 3, 7], request) == {1: "tumour", 3: "bone", 7: "Segment 7"}
    single = ImportRequest(series_uid="1.2", filename="x.nii.gz", segment_label="tumour")
    assert _segment_names({}, [5], single) == {5: "tumour"}
    assert _segment_names({5: "GTV"}, [5], single) == {5: "tumour"}
    assert _segment_names({5: "GTV"}, [5], ImportRequest(series_uid="1.2", filename="x")) == {5: "GTV"}


def test_segments_are_renumbered_in_order_and_an_empty_label_is_refused() -> None:
    label_map = np.array([[[0, 3, 7], [7, 0, 3]]], np.uint16)
    renumbered, names = _renumbered(label_map, {3: "bone", 7: "tumour"})
    assert renumbered.tolist() == [[[0, 1, 2], [2, 0, 1]]] and names == {1: "bone", 2: "tumour"}
    with pytest.raises(InvalidInput, match="empty"):
        _renumbered(np.zeros((2, 2, 2), np.uint16), {})
