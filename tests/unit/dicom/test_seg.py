"""The one SEG module: a label map's segments numbered as its SEG numbers them, the SEG written, and read back."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from highdicom.seg import SegmentAlgorithmTypeValues

from awesomme import __version__
from awesomme.core.errors import InvalidInput
from awesomme.dicom.seg import (
    DEMO_NOTICE,
    SegContent,
    decode_seg,
    encode_seg,
    seg_content,
    segment_masks,
    with_notice,
)
from awesomme.dicom.volumes import sort_by_position
from tests.dicom_checks import dciodvfy_errors
from tests.unit.conftest import SmallSeries

MANUAL = SegmentAlgorithmTypeValues.MANUAL
AUTOMATIC = SegmentAlgorithmTypeValues.AUTOMATIC
NAMES = {1: "nodule", 2: "lung", 7: "bone", 300: "tumour"}


def _label_map(series: SmallSeries, values: tuple[int, ...], dtype: type) -> np.ndarray:
    shape = (len(series.datasets), int(series.datasets[0].Rows), int(series.datasets[0].Columns))
    label_map = np.zeros(shape, dtype)
    for index, value in enumerate(values):  # blocks of each value; the middle slice stays empty
        label_map[1 : shape[0] // 2, 4 + 10 * index : 12 + 10 * index, 5:40] = value
        label_map[shape[0] // 2 + 1 :, 8 + 10 * index : 10 + 10 * index, 20:30] = value
    return label_map


def _encode(
    series: SmallSeries, content: SegContent, algorithm_type: SegmentAlgorithmTypeValues = MANUAL, **options: Any
) -> Any:
    return encode_seg(
        sort_by_position(series.datasets),
        content,
        algorithm_type=algorithm_type,
        series_description="Label (final)",
        content_description="a test",
        **options,
    )


# -- numbering --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_a_map_numbered_one_to_n_is_kept_as_it_is(small_ct: SmallSeries, dtype: type) -> None:
    label_map = _label_map(small_ct, (1, 2, 3), dtype)
    content = seg_content(label_map, NAMES)
    assert content.label_map is label_map  # no copy
    assert content.names == {1: "nodule", 2: "lung", 3: "Segment 3"}
    assert content.counts == {value: int((label_map == value).sum()) for value in (1, 2, 3)}


@pytest.mark.parametrize(("values", "dtype"), [((2, 7), np.uint16), ((300,), np.uint16), ((3, 9), np.int64)])
def test_other_values_are_numbered_one_to_n_in_their_order(
    small_ct: SmallSeries, values: tuple[int, ...], dtype: type
) -> None:
    label_map = _label_map(small_ct, values, dtype)
    content = seg_content(label_map, NAMES)
    numbers = range(1, len(values) + 1)
    assert content.label_map.dtype in (np.uint8, np.uint16)
    for number, value in zip(numbers, values, strict=True):
        assert np.array_equal(content.label_map == number, label_map == value)
        assert content.counts[number] == int((label_map == value).sum())
    assert content.names == {n: NAMES.get(v, f"Segment {v}") for n, v in zip(numbers, values, strict=True)}


def test_a_mask_is_one_segment(small_ct: SmallSeries) -> None:
    mask = _label_map(small_ct, (1,), np.uint8) > 0
    content = seg_content(mask, {1: "nodule"})
    assert np.array_equal(content.label_map, mask) and content.counts == {1: int(mask.sum())}


@pytest.mark.parametrize("shape", [(12, 64, 64), (0, 4, 4)])
def test_an_empty_label_has_no_content(shape: tuple[int, int, int]) -> None:
    with pytest.raises(InvalidInput, match="no voxel is segmented"):
        seg_content(np.zeros(shape, np.uint8), {})


def test_the_summary_numbers_segments_as_the_seg_does(small_ct: SmallSeries) -> None:
    """A label saved with values 2 and 7 is segments 1 and 2 of its SEG, and of its record."""
    label_map = _label_map(small_ct, (2, 7), np.uint16)
    content = seg_content(label_map, NAMES)
    seg = _encode(small_ct, content)
    summary = content.summary(0.125)
    lung = {"scheme": "SCT", "value": "39607008", "meaning": "Lung"}
    bone = {"scheme": "SCT", "value": "272673000", "meaning": "Bone"}
    assert summary == [
        {"number": 1, "label": "lung", "type": lung, "volume_ml": round(int((label_map == 2).sum()) * 0.125, 3)},
        {"number": 2, "label": "bone", "type": bone, "volume_ml": round(int((label_map == 7).sum()) * 0.125, 3)},
    ]
    assert [(s["number"], s["label"], s["type"]["value"]) for s in summary] == [
        (int(item.SegmentNumber), str(item.SegmentLabel), str(item.SegmentedPropertyTypeCodeSequence[0].CodeValue))
        for item in seg.SegmentSequence
    ]


def test_a_seg_read_back_keeps_the_coded_types_it_declares(small_mr: SmallSeries) -> None:
    """A segment whose label names no known structure keeps the type its SEG declares, not the label's."""
    source = sort_by_position(small_mr.datasets)
    written = _encode(small_mr, seg_content(small_mr.truth_label_map(), {1: "tumour", 2: "bone"}))
    written.SegmentSequence[0].SegmentLabel = "Segment 1"  # as a viewer names it, with the codes it chose
    content = decode_seg(written, source)
    assert content.names[1] == "Segment 1"
    assert content.summary(1.0)[0]["type"] == {"scheme": "SCT", "value": "108369006", "meaning": "Neoplasm"}


# -- the SEG ----------------------------------------------------------------------------------------------------
def test_a_manual_seg_holds_its_segments_frames_and_references_and_validates(
    small_mr: SmallSeries, tmp_path: Path
) -> None:
    source = sort_by_position(small_mr.datasets)
    label_map = small_mr.truth_label_map()
    assert set(np.unique(label_map)) == {0, 1, 2}
    seg = _encode(small_mr, seg_content(label_map, {1: "tumour", 2: "bone"}), author="Doe^Jane")

    assert [(int(item.SegmentNumber), item.SegmentLabel) for item in seg.SegmentSequence] == [
        (1, "tumour"),
        (2, "bone"),
    ]
    coded = [
        (
            item.SegmentedPropertyTypeCodeSequence[0].CodeValue,
            item.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator,
        )
        for item in seg.SegmentSequence
    ]
    assert coded == [("108369006", "SCT"), ("272673000", "SCT")]  # Neoplasm, Bone
    assert {item.SegmentAlgorithmType for item in seg.SegmentSequence} == {"MANUAL"}
    assert not any("SegmentationAlgorithmIdentificationSequence" in item for item in seg.SegmentSequence)
    assert str(seg.ContentCreatorName) == "Doe^Jane"
    assert seg.SegmentationType == "BINARY"
    assert (seg.SeriesDescription, seg.ContentDescription) == ("Label (final)", "a test")

    # one frame per segment per source slice it covers, each pointing at its source instance
    slices = {number: np.flatnonzero((label_map == number).any(axis=(1, 2))) for number in (1, 2)}
    assert int(seg.NumberOfFrames) == sum(len(found) for found in slices.values())
    uids = [str(ds.SOPInstanceUID) for ds in source]
    for frame in seg.PerFrameFunctionalGroupsSequence:
        number = int(frame.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        referenced = str(frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID)
        assert uids.index(referenced) in slices[number]
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == source[0].SeriesInstanceUID
    referenced = {
        str(item.ReferencedSOPInstanceUID) for item in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    }
    assert referenced == set(uids)
    assert seg.FrameOfReferenceUID == source[0].FrameOfReferenceUID

    seg.save_as(tmp_path / "seg.dcm")
    assert dciodvfy_errors(tmp_path / "seg.dcm") == []


def test_an_automatic_seg_names_its_algorithm_and_no_person(small_mr: SmallSeries) -> None:
    content = seg_content(small_mr.truth_label_map(), {})
    seg = _encode(
        small_mr, content, algorithm_type=AUTOMATIC, algorithm_name="osteosarcoma_mr", algorithm_version="1.0"
    )
    for item in seg.SegmentSequence:
        assert item.SegmentAlgorithmType == "AUTOMATIC"
        assert item.SegmentAlgorithmName == "osteosarcoma_mr"
        identification = item.SegmentationAlgorithmIdentificationSequence[0]
        assert (identification.AlgorithmName, identification.AlgorithmVersion) == ("osteosarcoma_mr", "1.0")
        assert identification.AlgorithmFamilyCodeSequence[0].CodeValue == "123110"  # Artificial Intelligence
    assert [item.SegmentLabel for item in seg.SegmentSequence] == ["Segment 1", "Segment 2"]
    assert not seg.ContentCreatorName  # type 2: present, empty when no person made it

    unnamed = _encode(small_mr, content, algorithm_type=AUTOMATIC)
    identification = unnamed.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert (identification.AlgorithmName, identification.AlgorithmVersion) == ("AWESOMME", __version__)


@pytest.mark.parametrize(
    ("values", "dtype"), [((1,), np.uint8), ((1, 2, 3), np.uint8), ((2, 7), np.uint16), ((300,), np.uint16)]
)
def test_a_seg_decodes_to_its_content(small_ct: SmallSeries, values: tuple[int, ...], dtype: type) -> None:
    source = sort_by_position(small_ct.datasets)
    content = seg_content(_label_map(small_ct, values, dtype), NAMES)
    seg = _encode(small_ct, content)
    buffer = io.BytesIO()
    seg.save_as(buffer)
    for written in (seg, pydicom.dcmread(io.BytesIO(buffer.getvalue()))):  # as built, and as read from a file
        decoded = decode_seg(written, source)
        assert np.array_equal(decoded.label_map, content.label_map)
        assert decoded.names == content.names and decoded.counts == content.counts

    names, masks = segment_masks(seg, source)
    assert names == list(content.names.values())
    assert all(np.array_equal(mask, content.label_map == n) for n, mask in enumerate(masks, start=1))


def test_what_is_no_seg_does_not_decode(small_ct: SmallSeries) -> None:
    source = sort_by_position(small_ct.datasets)
    with pytest.raises(InvalidInput, match="the SEG cannot be read"):
        decode_seg(source[0], source)


def test_the_demo_notice_is_kept_whole_and_the_text_before_it_gives_way() -> None:
    long = "staging " * 20
    marked = with_notice(long, DEMO_NOTICE)
    assert len(marked) == 64 and marked.endswith(f"({DEMO_NOTICE})") and marked.startswith("staging staging")
    assert with_notice("short", DEMO_NOTICE) == f"short ({DEMO_NOTICE})"
    assert with_notice(f"short ({DEMO_NOTICE})", DEMO_NOTICE) == f"short ({DEMO_NOTICE})"  # never twice
    assert with_notice("", DEMO_NOTICE) == DEMO_NOTICE
    assert with_notice(long, None) == long[:64]
