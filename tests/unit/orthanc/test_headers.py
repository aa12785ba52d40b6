"""Series headers kept from a decode: every element but the pixels, per series version, the oldest let go first."""

from __future__ import annotations

from typing import Any

import numpy as np
from highdicom.seg import SegmentAlgorithmTypeValues
from pydicom import Dataset

from awesomme.dicom.seg import encode_seg, seg_content
from awesomme.dicom.volumes import sort_by_position
from awesomme.orthanc.client import SeriesState
from awesomme.orthanc.headers import SeriesHeaders, without_pixels
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


def _state(series_uid: str, last_update: str = "20261127T100000", instances: int = 12) -> SeriesState:
    return SeriesState("orthanc-id", series_uid, "1.2.3", "CT", instances, last_update)


def test_a_header_is_the_dataset_without_its_pixels(small_ct: SmallSeries) -> None:
    dataset = small_ct.datasets[0]
    assert dataset.pixel_array.size  # decoded pixels cached on the dataset must not follow
    header = without_pixels(dataset)
    assert "PixelData" not in header and "PixelData" in dataset
    assert [element.tag for element in header] == [element.tag for element in dataset if element.keyword != "PixelData"]
    assert header.SOPInstanceUID == dataset.SOPInstanceUID
    assert header.ImagePositionPatient == dataset.ImagePositionPatient


def test_a_seg_of_kept_headers_is_that_of_orthancs_metadata(small_ct: SmallSeries) -> None:
    """What the server keeps from a decode references the series as DICOMweb's metadata (JSON) would."""
    headers = sort_by_position([without_pixels(ds) for ds in small_ct.datasets])
    metadata = sort_by_position([Dataset.from_json(header.to_json_dict()) for header in headers])
    label_map = np.zeros((len(headers), 64, 64), np.uint8)
    label_map[3:8, 10:30, 20:40] = 1
    content = seg_content(label_map, {1: "nodule"})
    common = {"series_description": "Prediction", "content_description": "a test"}
    from_headers = encode_seg(headers, content, algorithm_type=SegmentAlgorithmTypeValues.AUTOMATIC, **common)
    from_metadata = encode_seg(metadata, content, algorithm_type=SegmentAlgorithmTypeValues.AUTOMATIC, **common)
    assert _comparable(from_headers) == _comparable(from_metadata)
    referenced = from_headers.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    assert {item.ReferencedSOPInstanceUID for item in referenced} == {ds.SOPInstanceUID for ds in small_ct.datasets}


def test_headers_are_kept_per_version_and_the_oldest_let_go(small_ct: SmallSeries) -> None:
    kept = SeriesHeaders(capacity=2)
    headers = [without_pixels(ds) for ds in small_ct.datasets]
    kept.keep(_state("a"), headers)
    assert kept.get(_state("a")) == headers
    assert kept.get(_state("a", last_update="20261127T110000")) is None  # the series changed since
    assert kept.get(_state("a", instances=13)) is None

    kept.keep(_state("b"), headers[:1])
    assert kept.get(_state("a")) is not None  # now the most recently used
    kept.keep(_state("c"), headers[:2])
    assert kept.get(_state("b")) is None  # the least recently used went
    assert kept.get(_state("a")) == headers and kept.get(_state("c")) == headers[:2]

    got = kept.get(_state("a"))
    assert got is not None
    got.clear()  # a caller's list is its own
    assert kept.get(_state("a")) == headers
