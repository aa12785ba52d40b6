"""The faster SEG path yields highdicom's SEG of ``build_seg``: the same segments, frames and references."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom import Dataset

from awesomme.core.errors import InvalidInput
from awesomme.dicom.seg import build_seg, seg_label_map, segment_summary
from awesomme.dicom.seg_writer import encode_seg, segment_voxel_counts, summary_from_counts
from awesomme.dicom.volumes import sort_by_position
from tests.dicom_checks import dciodvfy_errors
from tests.unit.conftest import SmallSeries

# Differ between any two SEGs however built: new UIDs and the time of creation.
PER_INSTANCE = {
    "00080018",  # SOPInstanceUID
    "0020000E",  # SeriesInstanceUID
    "00080012",  # InstanceCreationDate
    "00080013",  # InstanceCreationTime
    "00080021",  # SeriesDate
    "00080031",  # SeriesTime
    "00080023",  # ContentDate
    "00080033",  # ContentTime
    "00209164",  # DimensionOrganizationUID
    "00209221",  # DimensionOrganizationSequence (holds that UID)
    "00209222",  # DimensionIndexSequence (refers to it)
}


def _comparable(seg: Dataset) -> dict[str, Any]:
    content = seg.to_json_dict(bulk_data_threshold=1 << 62)
    return {tag: value for tag, value in content.items() if tag not in PER_INSTANCE}


def _label_map(series: SmallSeries, values: tuple[int, ...], dtype: type) -> np.ndarray:
    shape = (len(series.datasets), int(series.datasets[0].Rows), int(series.datasets[0].Columns))
    label_map = np.zeros(shape, dtype)
    for index, value in enumerate(values):  # blocks of each value; the middle slice stays empty
        label_map[1 : shape[0] // 2, 4 + 10 * index : 12 + 10 * index, 5:40] = value
        label_map[shape[0] // 2 + 1 :, 8 + 10 * index : 10 + 10 * index, 20:30] = value
    return label_map


@pytest.mark.parametrize(
    ("values", "dtype", "algorithm_type", "author"),
    [
        ((1,), np.uint8, "AUTOMATIC", None),
        ((1, 2, 3), np.uint8, "SEMIAUTOMATIC", "Doe^Jane"),
        ((2, 7), np.uint16, "MANUAL", "Doe^Jane"),  # gaps: renumbered 1..N, the caller's labels kept
        ((300,), np.uint16, "AUTOMATIC", None),
    ],
)
def test_the_same_seg_as_build_seg(
    small_ct: SmallSeries, tmp_path: Path, values: tuple[int, ...], dtype: type, algorithm_type: str, author: str | None
) -> None:
    source = sort_by_position(small_ct.datasets)
    label_map = _label_map(small_ct, values, dtype)
    names = {1: "nodule", 2: "lung", 7: "bone", 300: "tumour"}
    common = {
        "algorithm_type": algorithm_type,
        "series_description": "Prediction",
        "content_description": "a test",
        "author": author,
        "algorithm_name": None if algorithm_type == "MANUAL" else "bench",
        "algorithm_version": "" if algorithm_type == "MANUAL" else "1.2",
    }
    reference = build_seg(source, label_map, names, **common)
    fast = encode_seg(source, label_map, names, **common)

    compared = _comparable(reference)
    assert {"00620002", "52009230", "00081115", "7FE00010"} <= set(compared)  # segments, frames, references, pixels
    assert _comparable(fast) == compared
    assert fast.PixelData == reference.PixelData
    assert fast.NumberOfFrames == reference.NumberOfFrames
    assert np.array_equal(seg_label_map(fast, source) > 0, label_map > 0)
    fast.save_as(tmp_path / "seg.dcm")
    assert dciodvfy_errors(tmp_path / "seg.dcm") == []


def test_counts_give_the_segment_summary(small_ct: SmallSeries) -> None:
    label_map = _label_map(small_ct, (1, 4), np.uint8)
    counts = segment_voxel_counts(label_map)
    assert counts == {1: int((label_map == 1).sum()), 4: int((label_map == 4).sum())}
    names = {1: "nodule"}
    assert summary_from_counts(counts, names, 0.125) == segment_summary(label_map, names, 0.125)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_counts_of_one_segment_or_none(small_ct: SmallSeries, dtype: type) -> None:
    label_map = _label_map(small_ct, (1,), dtype)
    assert segment_voxel_counts(label_map) == {1: int((label_map == 1).sum())} and label_map.any()
    assert segment_voxel_counts(np.zeros_like(label_map)) == {}
    assert segment_voxel_counts(np.zeros((0, 4, 4), dtype)) == {}


def test_an_empty_label_has_no_seg(small_ct: SmallSeries) -> None:
    empty = np.zeros_like(_label_map(small_ct, (1,), np.uint8))
    with pytest.raises(InvalidInput, match="empty"):
        encode_seg(
            sort_by_position(small_ct.datasets),
            empty,
            {},
            algorithm_type="AUTOMATIC",
            series_description="x",
            content_description="y",
        )
