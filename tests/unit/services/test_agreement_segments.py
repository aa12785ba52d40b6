"""Which segments of two SEGs agreement compares: the same structure (coded type, else label), whatever the
numbers each SEG gave them, and with the metrics measured on those very segments."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from awesomme.dicom.volumes import Grid
from awesomme.models import Segmentation, SegmentationRole
from awesomme.services.agreement import SeriesSegmentations, matched_segments, segment_identity, segmentation_agreement

NEOPLASM = {"scheme": "SCT", "value": "108369006", "meaning": "Neoplasm"}


def _segment(number: int, label: str, kind: dict[str, str] | None = None) -> dict[str, Any]:
    segment: dict[str, Any] = {"number": number, "label": label, "volume_ml": 1.0}
    if kind is not None:
        segment["type"] = kind
    return segment


def test_a_structure_is_matched_by_its_coded_type_whatever_its_label_spells() -> None:
    assert segment_identity(_segment(3, "tumour", NEOPLASM)) == segment_identity(_segment(1, "Tumor"))
    assert segment_identity(_segment(1, "tumour")) != segment_identity(_segment(1, "lung"))


def test_segments_of_the_generic_type_are_matched_by_label_case_aside() -> None:
    tissue = {"scheme": "SCT", "value": "85756007", "meaning": "Tissue"}
    assert segment_identity(_segment(1, "Oedema ", tissue)) == segment_identity(_segment(2, "oedema"))
    assert segment_identity(_segment(1, "oedema", tissue)) != segment_identity(_segment(1, "necrosis", tissue))


def test_matching_ignores_numbers_and_keeps_what_one_side_lacks() -> None:
    slicer = [_segment(1, "bone"), _segment(3, "tumour", NEOPLASM)]  # numbered as the client's label list
    model = [_segment(1, "tumour", NEOPLASM)]
    pairs = [(a and a["number"], b and b["number"]) for a, b in matched_segments(slicer, model)]
    assert pairs == [(1, None), (3, 1)]


def _record(uid: str, segments: list[dict[str, Any]], **fields: Any) -> Segmentation:
    return Segmentation(seg_series_uid=uid, role=SegmentationRole.LABEL, segments=segments, **fields)


def test_agreement_measures_the_matched_segments_not_equal_numbers() -> None:
    grid = Grid(shape=(4, 8, 8), affine=np.diag([1.0, 1.0, 2.0, 1.0]))
    person = np.zeros(grid.shape, np.uint8)
    person[1:3, 2:6, 2:6] = 3  # the tumour, value 3 in this SEG
    person[0, 0:2, 0:2] = 1  # bone, which the model does not segment
    model = np.zeros(grid.shape, np.uint8)
    model[1:3, 2:6, 2:6] = 1  # the same tumour, value 1 in the model's SEG
    maps = {"1.1": person, "1.2": model}
    records = [
        _record("1.1", [_segment(1, "bone"), _segment(3, "tumour", NEOPLASM)], created_by="alice"),
        _record("1.2", [_segment(1, "tumour", NEOPLASM)], created_by="bob"),
    ]
    result = segmentation_agreement(SeriesSegmentations("1.9", records, grid, lambda r: maps[r.seg_series_uid]))
    pairs = {(p["segment_a"], p["segment_b"]): p for p in result["pairs"]}
    assert set(pairs) == {(3, 1), (1, None)}
    assert pairs[(3, 1)]["dice"] == pytest.approx(1.0) and pairs[(3, 1)]["segment_type"] == "Neoplasm"
    assert pairs[(1, None)]["dice"] == 0.0 and pairs[(1, None)]["volume_b_ml"] == 0.0
    assert pairs[(1, None)]["label_a"] == "bone" and pairs[(1, None)]["label_b"] == ""
