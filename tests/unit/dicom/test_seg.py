from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from awesomme.core.errors import InvalidInput
from awesomme.dicom.seg import build_seg, seg_label_map
from awesomme.dicom.volumes import sort_by_position
from tests.dicom_checks import dciodvfy_errors
from tests.unit.conftest import SmallSeries


def test_a_two_segment_seg_decodes_to_the_same_label_map_and_validates(small_mr: SmallSeries, tmp_path: Path) -> None:
    source = sort_by_position(small_mr.datasets)
    label_map = small_mr.truth_label_map()
    assert set(np.unique(label_map)) == {0, 1, 2}
    seg = build_seg(
        source,
        label_map,
        {1: "tumour", 2: "bone"},
        algorithm_type="MANUAL",
        series_description="Label (final)",
        content_description="label final",
        author="Doe^Jane",
    )
    assert [item.SegmentLabel for item in seg.SegmentSequence] == ["tumour", "bone"]
    coded = [
        (
            item.SegmentedPropertyTypeCodeSequence[0].CodeValue,
            item.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator,
        )
        for item in seg.SegmentSequence
    ]
    assert coded == [("108369006", "SCT"), ("272673000", "SCT")]  # Neoplasm, Bone
    assert str(seg.ContentCreatorName) == "Doe^Jane"
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == source[0].SeriesInstanceUID
    assert seg.FrameOfReferenceUID == source[0].FrameOfReferenceUID
    assert np.array_equal(seg_label_map(seg, source), label_map)
    seg.save_as(tmp_path / "seg.dcm")
    assert dciodvfy_errors(tmp_path / "seg.dcm") == []


def test_an_automatic_seg_names_its_algorithm(small_mr: SmallSeries) -> None:
    source = sort_by_position(small_mr.datasets)
    seg = build_seg(
        source,
        small_mr.truth_label_map(),
        {},
        algorithm_type="AUTOMATIC",
        series_description="Prediction",
        content_description="prediction",
        algorithm_name="osteosarcoma_mr",
        algorithm_version="1.0",
    )
    segment = seg.SegmentSequence[0]
    assert segment.SegmentAlgorithmType == "AUTOMATIC"
    assert segment.SegmentAlgorithmName == "osteosarcoma_mr"
    assert not seg.ContentCreatorName  # type 2: present, empty when no person made it


def test_empty_masks_and_unknown_algorithm_types_are_refused(small_mr: SmallSeries) -> None:
    source = sort_by_position(small_mr.datasets)
    empty = np.zeros((12, 64, 64), np.uint8)
    with pytest.raises(InvalidInput, match="empty"):
        build_seg(source, empty, {}, algorithm_type="MANUAL", series_description="", content_description="")
    with pytest.raises(InvalidInput, match="algorithm type"):
        build_seg(source, empty + 1, {}, algorithm_type="GUESSED", series_description="", content_description="")
