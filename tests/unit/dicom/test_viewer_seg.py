"""A viewer's SEG (OHIF's bitmap SEG) read onto its series: every frame checked against its source instance, read
although it does not declare its spatial locations preserved, its segments' codes and colours kept; a LABELMAP
SEG refused naming its SOP class; and the colours the platform's writer gives every segment."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from awesomme.core.errors import InvalidInput
from awesomme.dicom.label_geometry import GeometryTolerance
from awesomme.dicom.seg import decode_seg, display_colour, encode_seg, rgb_to_dicom_lab, seg_content
from awesomme.dicom.segmentation_files import LABELMAP_SEG_STORAGE, read_binary_seg, read_segmentation_file
from awesomme.dicom.volumes import grid_from_datasets, sort_by_position
from awesomme.phantoms import generate_patient
from tests.dicom_checks import dciodvfy_errors, has_dciodvfy
from tests.ohif_seg_files import (
    DCMJS_FIXTURE,
    FIXTURES,
    SEGMENTS,
    bitmap_seg,
    decode_frames,
    fixture_label_map,
    labelmap_seg,
    phantom_of,
)
from tests.seg_files import truth_mask
from tests.unit.conftest import SmallSeries

TOLERANCE = GeometryTolerance()


def _source(series: SmallSeries) -> list[Dataset]:
    return sort_by_position(series.datasets)


def _label_map(series: SmallSeries) -> np.ndarray:
    return fixture_label_map(_source(series), truth_mask(series.patient.truth["tumour"]))


def _bytes(ds: Dataset) -> bytes:
    stream = io.BytesIO()
    ds.save_as(stream, write_like_original=False)
    return stream.getvalue()


def _ohif(series: SmallSeries) -> Dataset:
    return bitmap_seg(_source(series), _label_map(series))


def test_the_ohif_seg_declares_no_preserved_locations_and_highdicom_alone_refuses_it(small_mr: SmallSeries) -> None:
    seg = _ohif(small_mr)
    assert "SpatialLocationsPreserved" not in seg.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0]
    parsed = hd.seg.Segmentation.from_dataset(pydicom.dcmread(io.BytesIO(_bytes(seg))))
    with pytest.raises(RuntimeError, match="spatial locations are preserved"):
        parsed.get_pixels_by_source_instance([str(ds.SOPInstanceUID) for ds in _source(small_mr)])


def test_a_checked_ohif_seg_reads_as_exactly_its_frames(small_mr: SmallSeries) -> None:
    seg = _ohif(small_mr)
    labels = read_binary_seg(_bytes(seg), _source(small_mr), TOLERANCE)
    assert np.array_equal(labels.label_map, decode_frames(seg, _source(small_mr)))
    assert np.array_equal(labels.label_map, _label_map(small_mr))
    assert labels.names == {1: "tumour", 2: "oedema"}


def test_its_segments_keep_their_coded_types_and_colours_through_the_platforms_writer(small_mr: SmallSeries) -> None:
    source = _source(small_mr)
    labels = read_binary_seg(_bytes(_ohif(small_mr)), source, TOLERANCE)
    content = seg_content(labels.label_map, labels.names, labels.types, labels.colours)
    written = encode_seg(
        source,
        content,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        series_description="s",
        content_description="c",
        author="alpha.member",
    )
    read = decode_seg(written, source)
    assert read.codes(2)[1].value == "79654002"  # Edema, which the label alone would not give
    assert read.codes(1)[1].value == "85756007"  # Tissue as OHIF declared it, not the platform's Neoplasm
    assert read.colours == {s.number: rgb_to_dicom_lab(s.rgb) for s in SEGMENTS}


def _moved(seg: Dataset, frame: int, shift_mm: float) -> Dataset:
    position = seg.PerFrameFunctionalGroupsSequence[frame - 1].PlanePositionSequence[0]
    position.ImagePositionPatient = [float(v) + shift_mm for v in position.ImagePositionPatient]
    return seg


def test_a_frame_off_its_source_instances_position_is_refused_naming_the_frame(small_mr: SmallSeries) -> None:
    seg = _moved(_ohif(small_mr), 3, 1.0)
    with pytest.raises(InvalidInput, match=r"frame 3 lies at .* mm from its source instance"):
        read_binary_seg(_bytes(seg), _source(small_mr), TOLERANCE)


def test_a_frame_within_the_tolerance_is_read(small_mr: SmallSeries) -> None:
    seg = _moved(_ohif(small_mr), 3, 0.01)
    assert read_binary_seg(_bytes(seg), _source(small_mr), TOLERANCE).label_map.any()


def test_a_turned_orientation_is_refused(small_mr: SmallSeries) -> None:
    seg = _ohif(small_mr)
    angle = np.radians(2.0)
    seg.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient = [
        np.cos(angle),
        np.sin(angle),
        0.0,
        -np.sin(angle),
        np.cos(angle),
        0.0,
    ]
    with pytest.raises(InvalidInput, match=r"frame 1 is turned 2 degrees"):
        read_binary_seg(_bytes(seg), _source(small_mr), TOLERANCE)


def test_a_frame_of_another_series_is_refused_naming_the_frame(small_mr: SmallSeries, small_ct: SmallSeries) -> None:
    seg = _ohif(small_mr)
    other = seg.PerFrameFunctionalGroupsSequence[1].DerivationImageSequence[0].SourceImageSequence[0]
    other.ReferencedSOPInstanceUID = small_ct.datasets[0].SOPInstanceUID
    with pytest.raises(InvalidInput, match=r"frame 2 references instance .*, not one of series"):
        read_binary_seg(_bytes(seg), _source(small_mr), TOLERANCE)


def test_a_seg_of_another_series_is_refused(small_mr: SmallSeries, small_ct: SmallSeries) -> None:
    with pytest.raises(InvalidInput, match=r"frame of reference|references series"):
        read_binary_seg(_bytes(_ohif(small_mr)), _source(small_ct), TOLERANCE)


@pytest.mark.parametrize("read", ["save", "import"])
def test_a_labelmap_seg_is_refused_naming_its_sop_class(small_mr: SmallSeries, read: str) -> None:
    data = _bytes(labelmap_seg(_source(small_mr), _label_map(small_mr)))
    source = _source(small_mr)
    with pytest.raises(InvalidInput, match=f"SOP class {LABELMAP_SEG_STORAGE}.*LABELMAP"):
        if read == "save":
            read_binary_seg(data, source, TOLERANCE)
        else:
            read_segmentation_file(data, "dicom", source, grid_from_datasets(source), TOLERANCE)


def test_the_seg_dcmjs_itself_wrote_reads_as_the_segments_it_was_given() -> None:
    fixture = FIXTURES / DCMJS_FIXTURE
    phantom = phantom_of(fixture)
    with tempfile.TemporaryDirectory() as scratch:
        patient = generate_patient(phantom["kind"], phantom["seed"], Path(scratch), shape=tuple(phantom["shape"]))
        source = sort_by_position([pydicom.dcmread(path) for path in patient.dicom_files])
        truth = truth_mask(patient.truth["tumour"])
    labels = read_binary_seg(fixture.read_bytes(), source, TOLERANCE)
    assert np.array_equal(labels.label_map, fixture_label_map(source, truth))
    assert labels.names == {1: "tumour", 2: "oedema"} and labels.types[2][1].meaning == "Edema"
    assert all(
        abs(a - b) <= 1
        for n in (1, 2)
        for a, b in zip(labels.colours[n], rgb_to_dicom_lab(SEGMENTS[n - 1].rgb), strict=True)
    )


def test_an_ohif_seg_imports_as_the_same_labels(small_mr: SmallSeries) -> None:
    source = _source(small_mr)
    found, labels = read_segmentation_file(
        _bytes(_ohif(small_mr)), "dicom", source, grid_from_datasets(source), TOLERANCE
    )
    assert found == "dicom-seg"
    assert np.array_equal(labels.label_map, _label_map(small_mr))
    assert labels.types[2][1].value == "79654002"


def test_a_fractional_seg_is_not_saved_as_a_viewers_label(small_mr: SmallSeries) -> None:
    seg = _ohif(small_mr)
    seg.SegmentationType = "FRACTIONAL"
    with pytest.raises(InvalidInput, match="SegmentationType is FRACTIONAL"):
        read_binary_seg(_bytes(seg), _source(small_mr), TOLERANCE)


def test_every_segment_the_platform_writes_has_a_stable_display_colour(small_mr: SmallSeries) -> None:
    source = _source(small_mr)
    label_map = np.zeros(small_mr.patient.shape, np.uint8)
    label_map[5, 10:20, 10:20], label_map[6, 10:20, 10:20], label_map[7, 10:20, 10:20] = 1, 2, 3
    content = seg_content(label_map, {1: "Tumour", 2: "liver", 3: "bone"})
    seg = encode_seg(
        source,
        content,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        series_description="s",
        content_description="c",
        algorithm_name="m",
    )
    colours = [tuple(item.RecommendedDisplayCIELabValue) for item in seg.SegmentSequence]
    assert colours[0] == display_colour("tumour", 9)  # a known structure: its colour, whatever its number
    assert colours[1] == display_colour("anything", 2)  # otherwise its number's
    assert colours[2] == display_colour("bone", 1)
    assert len(set(colours)) == 3


def test_srgb_colours_in_dicom_lab_as_dcmjs_writes_them() -> None:
    assert rgb_to_dicom_lab((255, 255, 255)) == (0xFFFF, 0x8080, 0x8080)  # white: L* 100, a* = b* = 0
    assert rgb_to_dicom_lab((0, 0, 0)) == (0, 0x8080, 0x8080)
    # what dcmjs 0.52.2's Colors.rgb2DICOMLAB (OHIF's own conversion) gives for the fixture's two colours, rounded
    assert rgb_to_dicom_lab((230, 60, 60)) == (34786, 49658, 43635)
    assert rgb_to_dicom_lab((60, 120, 230)) == (33421, 35403, 16778)


@pytest.mark.skipif(not has_dciodvfy(), reason="dciodvfy (dicom3tools) is not installed")
def test_a_re_written_viewer_seg_is_dciodvfy_clean(small_mr: SmallSeries, tmp_path: Path) -> None:
    source = _source(small_mr)
    labels = read_binary_seg(_bytes(_ohif(small_mr)), source, TOLERANCE)
    seg = encode_seg(
        source,
        seg_content(labels.label_map, labels.names, labels.types, labels.colours),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        series_description="Label (final)",
        content_description="saved from the viewer",
        author="alpha.member",
    )
    seg.save_as(tmp_path / "seg.dcm")
    assert dciodvfy_errors(tmp_path / "seg.dcm") == []


def test_a_code_the_writer_could_not_write_again_falls_back_to_the_labels_codes(small_mr: SmallSeries) -> None:
    seg = _ohif(small_mr)
    seg.SegmentSequence[1].SegmentedPropertyTypeCodeSequence[0].CodeMeaning = "m" * 200  # an LO holds 64
    source = _source(small_mr)
    labels = read_binary_seg(_bytes(seg), source, TOLERANCE)
    assert 2 not in labels.types and labels.types[1][1].value == "85756007"
    content = seg_content(labels.label_map, labels.names, labels.types, labels.colours)
    written = encode_seg(
        source,
        content,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        series_description="s",
        content_description="c",
        author="alpha.member",
    )
    assert written.SegmentSequence[1].SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Tissue"


def test_an_unreadable_number_of_frames_is_a_422_not_a_crash(small_mr: SmallSeries) -> None:
    data = _bytes(_ohif(small_mr)).replace(b"IS\x02\x007 ", b"IS\x02\x00x ")  # NumberOfFrames "7 " -> "x "
    assert data != _bytes(_ohif(small_mr))
    with pytest.raises(InvalidInput, match="Number of Frames cannot be read"):
        read_binary_seg(data, _source(small_mr), TOLERANCE)
