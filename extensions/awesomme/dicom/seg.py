"""Label maps <-> DICOM SEG, written and read with highdicom: the platform's one SEG writer and one SEG reader.

A label map is indexed (slice, row, column) over the source instances ordered along the slice normal; its values
are segment numbers, 0 the background. ``seg_content`` numbers a label map's segments 1..N as its SEG will number
them, so that the SEG and the summary a record keeps always agree; ``encode_seg`` writes that content as a binary
SEG and ``decode_seg`` reads a SEG back as content on its series' grid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import highdicom as hd
import numpy as np
from pydicom import Dataset
from pydicom.sr.coding import Code

from awesomme import __version__
from awesomme.core.errors import InvalidInput
from awesomme.dicom.label_geometry import GeometryTolerance

__all__ = [
    "DEMO_NOTICE",
    "SegContent",
    "check_seg_frames",
    "decode_seg",
    "display_colour",
    "encode_seg",
    "rgb_to_dicom_lab",
    "seg_content",
    "segment_codes",
    "segment_colours",
    "segment_masks",
    "segment_type",
    "with_notice",
]

# Codes spelled out (pydicom's lookup is untyped): DCM "Artificial Intelligence" and SNOMED CT categories and
# types (DICOM CID 7150/7151) for the structures our models and phantoms know; anything else is "Tissue".
ARTIFICIAL_INTELLIGENCE = Code("123110", "DCM", "Artificial Intelligence")
TISSUE = Code("85756007", "SCT", "Tissue")
ANATOMICAL_STRUCTURE = Code("91723000", "SCT", "Anatomical Structure")
ALTERED_STRUCTURE = Code("49755003", "SCT", "Morphologically Altered Structure")
SEGMENT_CODES: dict[str, tuple[Code, Code]] = {
    "tumour": (ALTERED_STRUCTURE, Code("108369006", "SCT", "Neoplasm")),
    "tumor": (ALTERED_STRUCTURE, Code("108369006", "SCT", "Neoplasm")),
    "nodule": (ALTERED_STRUCTURE, Code("27925004", "SCT", "Nodule")),
    "lung": (ANATOMICAL_STRUCTURE, Code("39607008", "SCT", "Lung")),
    "bone": (ANATOMICAL_STRUCTURE, Code("272673000", "SCT", "Bone")),
}
SEG_SERIES_NUMBER = 9000
# Recommended display colours (sRGB): one per structure the platform knows, else one per segment number (a palette
# of distinct hues, cycled), so a SEG shows the same colours in OHIF, Slicer and our panels every time.
STRUCTURE_COLOURS: dict[str, tuple[int, int, int]] = {
    "tumour": (221, 52, 52),
    "tumor": (221, 52, 52),
    "nodule": (240, 140, 30),
    "lung": (200, 200, 235),
    "bone": (241, 214, 145),
}
PALETTE: tuple[tuple[int, int, int], ...] = (
    (128, 174, 128),
    (70, 130, 220),
    (230, 200, 40),
    (180, 90, 200),
    (60, 190, 190),
    (230, 120, 170),
    (140, 100, 60),
    (120, 200, 60),
)


def segment_type(label: str) -> tuple[Code, Code]:
    """The (category, type) codes the platform gives a segment of this label: a known structure's, else Tissue."""
    return SEGMENT_CODES.get(label.strip().lower(), (TISSUE, TISSUE))


def _code_json(code: Code) -> dict[str, str]:
    return {"scheme": str(code.scheme_designator), "value": str(code.value), "meaning": str(code.meaning)}


SEGMENT_LABEL_LENGTH = 64  # Segment Label is an LO
DESCRIPTION_LENGTH = 64  # Series Description and Content Description are LOs
# On every SEG derived from demo weights, however long its own description.
DEMO_NOTICE = "DEMO weights - not for clinical use"


@dataclass(frozen=True, eq=False)
class SegContent:
    """Segments numbered 1..N as a SEG numbers them: the label map (value = segment number), and by segment
    number each one's name and voxel count; ``types`` the (category, type) codes of those a SEG read back declares
    (a segment not in it has the codes ``segment_type`` gives its label)."""

    label_map: np.ndarray
    names: Mapping[int, str]
    counts: Mapping[int, int]
    types: Mapping[int, tuple[Code, Code]] = field(default_factory=dict)
    # Recommended Display CIELab Values (DICOM's 16-bit encoding) a SEG read back declares, by segment number.
    colours: Mapping[int, tuple[int, int, int]] = field(default_factory=dict)

    def codes(self, number: int) -> tuple[Code, Code]:
        """The (category, type) codes of segment ``number``."""
        return self.types.get(number) or segment_type(self.names[number])

    def colour(self, number: int) -> tuple[int, int, int]:
        """The Recommended Display CIELab Value of segment ``number``: its own, else the platform's."""
        return self.colours.get(number) or display_colour(self.names[number], number)

    def summary(self, voxel_volume_ml: float) -> list[dict[str, Any]]:
        """Number, label, coded type and volume (mL) of each segment, as a record keeps and a listing shows them."""
        return [
            {
                "number": number,
                "label": self.names[number],
                "type": _code_json(self.codes(number)[1]),
                "volume_ml": round(count * voxel_volume_ml, 3),
            }
            for number, count in sorted(self.counts.items())
        ]


def seg_content(
    label_map: np.ndarray,
    names: Mapping[int, str],
    types: Mapping[int, tuple[Code, Code]] | None = None,
    colours: Mapping[int, tuple[int, int, int]] | None = None,
) -> SegContent:
    """``label_map``'s segments numbered 1..N in the order of its values, named by ``names`` (by value), with the
    coded types and display colours ``types`` and ``colours`` give (by value; the platform's for the others).

    A map already numbered 1..N (a model's usual answer) is kept as it is, not copied; others go through one
    lookup-table pass. One ``np.bincount`` counts every segment (not ``np.unique``, a sort of every voxel).
    """
    if label_map.dtype == np.bool_:  # a mask: one segment (indexing a table with it would select, not map)
        label_map = label_map.view(np.uint8)
    counts = _voxel_counts(label_map)
    if not counts:
        raise InvalidInput("the label is empty: no voxel is segmented")
    values = sorted(counts)
    numbered = list(zip(range(1, len(values) + 1), values, strict=True))
    return SegContent(
        label_map=_numbered_one_to_n(label_map, values),
        names={n: names.get(v, f"Segment {v}")[:SEGMENT_LABEL_LENGTH] for n, v in numbered},
        counts={n: counts[v] for n, v in numbered},
        types={n: (types or {})[v] for n, v in numbered if v in (types or {})},
        colours={n: (colours or {})[v] for n, v in numbered if v in (colours or {})},
    )


def rgb_to_dicom_lab(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """An sRGB colour (0-255) as a Recommended Display CIELab Value: CIELab relative to D50, the ICC Profile
    Connection Space DICOM encodes (PS3.3 C.10.7.1.1), sRGB's D65 adapted with the linear Bradford transform
    (CSS Color 4's constants, as DCMTK and dcmjs, so OHIF, use them), each value scaled to 16 bits and rounded."""
    linear = np.array([c / 255 / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb])
    xyz_d50 = _BRADFORD_D65_TO_D50 @ (_SRGB_TO_XYZ_D65 @ linear)
    ratios = xyz_d50 / _D50_WHITE
    fx, fy, fz = (t ** (1 / 3) if t > 216 / 24389 else (24389 / 27 * t + 16) / 116 for t in ratios)
    lightness, a_star, b_star = 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)
    encoded = (lightness * 0xFFFF / 100, (a_star + 128) * 0xFFFF / 255, (b_star + 128) * 0xFFFF / 255)
    low, high = 0, 0xFFFF
    return (
        min(max(round(encoded[0]), low), high),
        min(max(round(encoded[1]), low), high),
        min(max(round(encoded[2]), low), high),
    )


_SRGB_TO_XYZ_D65 = np.array(
    [
        [506752 / 1228815, 87881 / 245763, 12673 / 70218],
        [87098 / 409605, 175762 / 245763, 12673 / 175545],
        [7918 / 409605, 87881 / 737289, 1001167 / 1053270],
    ]
)
_BRADFORD_D65_TO_D50 = np.array(
    [
        [1.0479297925449969, 0.022946870601609652, -0.05019226628920524],
        [0.02962780877005599, 0.9904344267538799, -0.017073799063418826],
        [-0.009243040646204504, 0.015055191490298152, 0.7518742814281371],
    ]
)
_D50_WHITE = np.array([0.3457 / 0.3585, 1.0, (1.0 - 0.3457 - 0.3585) / 0.3585])


def display_colour(label: str, number: int) -> tuple[int, int, int]:
    """The platform's Recommended Display CIELab Value for a segment: its structure's colour, else its number's."""
    rgb = STRUCTURE_COLOURS.get(label.strip().lower()) or PALETTE[(number - 1) % len(PALETTE)]
    return rgb_to_dicom_lab(rgb)


def _voxel_counts(label_map: np.ndarray) -> dict[int, int]:
    """Voxels of each value present (0, the background, left out)."""
    top = int(label_map.max()) if label_map.size else 0
    if top <= 1:  # one segment (or none): a count of non-zeros, without bincount's 8-byte copy of every voxel
        present = int(np.count_nonzero(label_map))
        return {1: present} if present else {}
    counts = np.bincount(label_map.ravel())
    return {int(value): int(counts[value]) for value in np.flatnonzero(counts) if value != 0}


def _numbered_one_to_n(label_map: np.ndarray, values: list[int]) -> np.ndarray:
    if values == list(range(1, len(values) + 1)) and label_map.dtype in (np.uint8, np.uint16):
        return label_map
    dtype = np.uint8 if len(values) < 256 else np.uint16
    lookup = np.zeros(values[-1] + 1, dtype=dtype)
    lookup[values] = np.arange(1, len(values) + 1, dtype=dtype)
    return lookup[label_map]


def encode_seg(
    source: Sequence[Dataset],
    content: SegContent,
    *,
    algorithm_type: hd.seg.SegmentAlgorithmTypeValues,
    series_description: str,
    content_description: str,
    author: str | None = None,
    algorithm_name: str | None = None,
    algorithm_version: str = "",
    demo: bool = False,
) -> hd.seg.Segmentation:
    """The platform's binary SEG of ``content`` over the ordered ``source`` instances; with ``demo`` (derived from
    demo weights) both descriptions end with ``DEMO_NOTICE``, whatever their length: the text before it is cut."""
    manual = algorithm_type == hd.seg.SegmentAlgorithmTypeValues.MANUAL
    identification = None
    if not manual:
        identification = hd.AlgorithmIdentificationSequence(
            name=algorithm_name or "AWESOMME", version=algorithm_version or __version__, family=ARTIFICIAL_INTELLIGENCE
        )
    descriptions = []
    for number, label in sorted(content.names.items()):
        category, kind = content.codes(number)
        description = hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=label,
            segmented_property_category=category,
            segmented_property_type=kind,
            algorithm_type=algorithm_type,
            algorithm_identification=identification,
        )
        # highdicom 0.22 takes no colour argument; viewers warn and guess one without it.
        description.RecommendedDisplayCIELabValue = list(content.colour(number))
        descriptions.append(description)
    return hd.seg.Segmentation(
        source_images=list(source),
        pixel_array=content.label_map,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=SEG_SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="AWESOMME",
        manufacturer_model_name="AWESOMME on MONAI Label",
        software_versions=__version__,
        device_serial_number="0",
        content_label="SEGMENTATION",
        content_description=with_notice(content_description, DEMO_NOTICE if demo else None),
        content_creator_name=author if manual or author else None,
        series_description=with_notice(series_description, DEMO_NOTICE if demo else None),
    )


def with_notice(text: str, notice: str | None, limit: int = DESCRIPTION_LENGTH) -> str:
    """``text`` cut to ``limit`` characters, the ``notice`` (if any) kept whole at its end: the text gives way."""
    if not notice:
        return text[:limit]
    if notice in text and len(text) <= limit:
        return text
    room = limit - len(notice) - 3  # " (" and ")"
    kept = text.replace(f" ({notice})", "").replace(f" - {notice}", "").strip()[: max(room, 0)].rstrip()
    return f"{kept} ({notice})" if kept else notice


def decode_seg(seg: Dataset, source: Sequence[Dataset]) -> SegContent:
    """A SEG as content on the ordered ``source`` grid: its segments combined in one label map (they must not
    overlap), named as its SegmentSequence names them."""
    parsed = _parsed(seg)
    label_map = _pixels(parsed, source, combine_segments=True)
    names = _segment_names(parsed)
    counts = _voxel_counts(label_map)
    return SegContent(
        label_map,
        names,
        {number: counts.get(number, 0) for number in names},
        _segment_codes(parsed),
        segment_colours(parsed),
    )


def segment_masks(
    seg: Dataset, source: Sequence[Dataset], *, frames_checked: bool = False
) -> tuple[list[str], list[np.ndarray]]:
    """Each segment of a SEG as a mask on the ordered ``source`` grid, in segment-number order, with its label;
    segments may overlap, and a fractional one counts where it is above one half. ``frames_checked``: every
    frame's geometry was checked against its source instance (``check_seg_frames``), so a SEG that does not declare
    its spatial locations preserved (OHIF's) is read by its frames' source references all the same."""
    parsed = _parsed(seg)
    names = _segment_names(parsed)
    numbers = sorted(names)
    options: dict[str, Any] = {"ignore_spatial_locations": True} if frames_checked else {}
    pixels = _pixels(parsed, source, combine_segments=False, segment_numbers=numbers, **options)
    return [names[number] for number in numbers], [pixels[..., index] > 0.5 for index in range(len(numbers))]


def _parsed(seg: Dataset) -> hd.seg.Segmentation:
    # A SEG we just built is parsed already (and holds a lookup table that cannot be copied).
    if isinstance(seg, hd.seg.Segmentation):
        return seg
    try:
        return hd.seg.Segmentation.from_dataset(seg, copy=False)
    except (ValueError, KeyError, RuntimeError, AttributeError, TypeError) as error:
        raise InvalidInput(f"the SEG cannot be read: {error}") from error


def _segment_names(parsed: hd.seg.Segmentation) -> dict[int, str]:
    return {int(item.SegmentNumber): str(item.SegmentLabel) for item in parsed.SegmentSequence}


def segment_colours(seg: Dataset) -> dict[int, tuple[int, int, int]]:
    """The Recommended Display CIELab Value each segment of a SEG declares (those with a valid one), by number."""
    colours = {}
    for item in getattr(seg, "SegmentSequence", None) or []:
        value = getattr(item, "RecommendedDisplayCIELabValue", None)
        try:
            triple = tuple(int(v) for v in value or ())
            number = int(item.SegmentNumber)
        except (AttributeError, TypeError, ValueError):
            continue
        if len(triple) == 3 and all(0 <= v <= 0xFFFF for v in triple):
            colours[number] = (triple[0], triple[1], triple[2])
    return colours


def segment_codes(seg: Dataset) -> dict[int, tuple[Code, Code]]:
    """The (category, type) codes each segment of a file declares, by number: only those the platform's writer can
    write again (each part given, within its VR's length); a segment without valid ones gets its label's."""
    return {number: codes for number, codes in _segment_codes(seg).items() if all(map(_writable, codes))}


def _writable(code: Code) -> bool:
    if not (str(code.value) and str(code.scheme_designator) and str(code.meaning)):
        return False
    try:
        hd.sr.CodedConcept(str(code.value), str(code.scheme_designator), str(code.meaning))
    except (ValueError, TypeError):
        return False
    return True


def _segment_codes(parsed: Dataset) -> dict[int, tuple[Code, Code]]:
    codes = {}
    for item in parsed.SegmentSequence:
        try:
            category, kind = item.SegmentedPropertyCategoryCodeSequence[0], item.SegmentedPropertyTypeCodeSequence[0]
            codes[int(item.SegmentNumber)] = (
                Code(str(category.CodeValue), str(category.CodingSchemeDesignator), str(category.CodeMeaning)),
                Code(str(kind.CodeValue), str(kind.CodingSchemeDesignator), str(kind.CodeMeaning)),
            )
        except (AttributeError, IndexError, ValueError):  # no codes (not a valid SEG): its label's, as for ours
            continue
    return codes


def _pixels(parsed: hd.seg.Segmentation, source: Sequence[Dataset], **options: Any) -> np.ndarray:
    try:
        return parsed.get_pixels_by_source_instance(
            source_sop_instance_uids=[str(ds.SOPInstanceUID) for ds in source],
            assert_missing_frames_are_empty=True,
            **options,
        )
    except (ValueError, KeyError, RuntimeError, AttributeError, TypeError) as error:
        raise InvalidInput(f"the SEG cannot be decoded on the series' instances: {error}") from error


# -- a SEG's frames against their source instances ---------------------------------------------------------------
def _floats(item: Any, keyword: str, count: int) -> np.ndarray | None:
    try:
        values = np.asarray([float(v) for v in getattr(item, keyword)], dtype=float)
    except (AttributeError, TypeError, ValueError):
        return None
    return values if values.shape == (count,) and np.all(np.isfinite(values)) else None


def _functional(frame: Any, shared: Any, sequence: str, keyword: str, count: int) -> np.ndarray | None:
    """A frame's value of ``keyword`` in its functional group ``sequence``: its own, else the shared one."""
    for group in (frame, shared):
        items = getattr(group, sequence, None) if group is not None else None
        if items:
            return _floats(items[0], keyword, count)
    return None


def _source_uids(frame: Any) -> set[str]:
    return {
        str(source.ReferencedSOPInstanceUID)
        for derivation in getattr(frame, "DerivationImageSequence", None) or []
        for source in getattr(derivation, "SourceImageSequence", None) or []
        if "ReferencedSOPInstanceUID" in source
    }


def _angle_deg(first: np.ndarray, second: np.ndarray) -> float:
    """The largest angle between the row and between the column direction cosines of two orientations."""
    angles = []
    for a, b in ((first[:3], second[:3]), (first[3:], second[3:])):
        norms = float(np.linalg.norm(a) * np.linalg.norm(b))
        cosine = float(np.dot(a, b) / norms) if norms else -1.0
        angles.append(float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))))
    return max(angles)


def _triple_text(values: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


def check_seg_frames(seg: Dataset, source: Sequence[Dataset], tolerance: GeometryTolerance) -> None:
    """Every frame of a SEG references one instance of the ``source`` series and lies where it does: same position
    (within ``tolerance.origin_mm``), orientation (``orientation_deg``), pixel spacing (``spacing_mm``) and size.
    What lets a SEG that does not declare its spatial locations preserved (OHIF's) be read by its source
    references; a 422 names the first frame that does not fit."""
    by_uid = {str(ds.SOPInstanceUID): ds for ds in source}
    series = str(source[0].SeriesInstanceUID) if source else "(none)"
    try:
        size = (int(getattr(seg, "Rows", 0) or 0), int(getattr(seg, "Columns", 0) or 0))
        declared = int(getattr(seg, "NumberOfFrames", 0) or 0)
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"the SEG's Rows, Columns or Number of Frames cannot be read: {error}") from error
    wanted = (int(source[0].Rows), int(source[0].Columns)) if source else (0, 0)
    if size != wanted:
        raise InvalidInput(f"the SEG's frames are {size[0]}x{size[1]}, the series' images {wanted[0]}x{wanted[1]}")
    frames = list(getattr(seg, "PerFrameFunctionalGroupsSequence", None) or [])
    if not frames or len(frames) != declared:
        raise InvalidInput(f"the SEG describes {len(frames)} frames but holds {declared}")
    shared_items = getattr(seg, "SharedFunctionalGroupsSequence", None) or [None]
    shared = shared_items[0]
    for number, frame in enumerate(frames, start=1):
        uids = _source_uids(frame)
        if len(uids) != 1:
            raise InvalidInput(f"frame {number} references {len(uids)} source instances, not one")
        uid = uids.pop()
        instance = by_uid.get(uid)
        if instance is None:
            raise InvalidInput(f"frame {number} references instance {uid}, not one of series {series}")
        position = _functional(frame, shared, "PlanePositionSequence", "ImagePositionPatient", 3)
        orientation = _functional(frame, shared, "PlaneOrientationSequence", "ImageOrientationPatient", 6)
        spacing = _functional(frame, shared, "PixelMeasuresSequence", "PixelSpacing", 2)
        if position is None or orientation is None or spacing is None:
            raise InvalidInput(f"frame {number} does not give its position, orientation and pixel spacing")
        expected = _floats(instance, "ImagePositionPatient", 3)
        assert expected is not None  # the series' instances were sorted by it
        distance = float(np.linalg.norm(position - expected))
        if distance > tolerance.origin_mm:
            raise InvalidInput(
                f"frame {number} lies at {_triple_text(position)} mm, {distance:.4g} mm from its source instance "
                f"{uid} at {_triple_text(expected)} (tolerance {tolerance.origin_mm} mm)"
            )
        source_orientation = _floats(instance, "ImageOrientationPatient", 6)
        assert source_orientation is not None
        angle = _angle_deg(orientation, source_orientation)
        if angle > tolerance.orientation_deg:
            raise InvalidInput(
                f"frame {number} is turned {angle:.4g} degrees from its source instance {uid} "
                f"(tolerance {tolerance.orientation_deg} degrees)"
            )
        source_spacing = _floats(instance, "PixelSpacing", 2)
        if source_spacing is not None and float(np.abs(spacing - source_spacing).max()) > tolerance.spacing_mm:
            raise InvalidInput(
                f"frame {number} has pixel spacing {_triple_text(spacing)} mm, its source instance {uid} "
                f"{_triple_text(source_spacing)} mm (tolerance {tolerance.spacing_mm} mm)"
            )
