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

__all__ = ["SegContent", "decode_seg", "encode_seg", "seg_content", "segment_masks", "segment_type"]

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


def segment_type(label: str) -> tuple[Code, Code]:
    """The (category, type) codes the platform gives a segment of this label: a known structure's, else Tissue."""
    return SEGMENT_CODES.get(label.strip().lower(), (TISSUE, TISSUE))


def _code_json(code: Code) -> dict[str, str]:
    return {"scheme": str(code.scheme_designator), "value": str(code.value), "meaning": str(code.meaning)}


SEGMENT_LABEL_LENGTH = 64  # Segment Label is an LO


@dataclass(frozen=True, eq=False)
class SegContent:
    """Segments numbered 1..N as a SEG numbers them: the label map (value = segment number), and by segment
    number each one's name and voxel count; ``types`` the (category, type) codes of those a SEG read back declares
    (a segment not in it has the codes ``segment_type`` gives its label)."""

    label_map: np.ndarray
    names: Mapping[int, str]
    counts: Mapping[int, int]
    types: Mapping[int, tuple[Code, Code]] = field(default_factory=dict)

    def codes(self, number: int) -> tuple[Code, Code]:
        """The (category, type) codes of segment ``number``."""
        return self.types.get(number) or segment_type(self.names[number])

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


def seg_content(label_map: np.ndarray, names: Mapping[int, str]) -> SegContent:
    """``label_map``'s segments numbered 1..N in the order of its values, named by ``names`` (by value).

    A map already numbered 1..N (a model's usual answer) is kept as it is, not copied; others go through one
    lookup-table pass. One ``np.bincount`` counts every segment (not ``np.unique``, a sort of every voxel).
    """
    if label_map.dtype == np.bool_:  # a mask: one segment (indexing a table with it would select, not map)
        label_map = label_map.view(np.uint8)
    counts = _voxel_counts(label_map)
    if not counts:
        raise InvalidInput("the label is empty: no voxel is segmented")
    values = sorted(counts)
    numbers = range(1, len(values) + 1)
    return SegContent(
        label_map=_numbered_one_to_n(label_map, values),
        names={n: names.get(v, f"Segment {v}")[:SEGMENT_LABEL_LENGTH] for n, v in zip(numbers, values, strict=True)},
        counts={n: counts[v] for n, v in zip(numbers, values, strict=True)},
    )


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
) -> hd.seg.Segmentation:
    """The platform's binary SEG of ``content`` over the ordered ``source`` instances."""
    manual = algorithm_type == hd.seg.SegmentAlgorithmTypeValues.MANUAL
    identification = None
    if not manual:
        identification = hd.AlgorithmIdentificationSequence(
            name=algorithm_name or "AWESOMME", version=algorithm_version or __version__, family=ARTIFICIAL_INTELLIGENCE
        )
    descriptions = []
    for number, label in sorted(content.names.items()):
        category, kind = content.codes(number)
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=label,
                segmented_property_category=category,
                segmented_property_type=kind,
                algorithm_type=algorithm_type,
                algorithm_identification=identification,
            )
        )
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
        content_description=content_description[:64],
        content_creator_name=author if manual or author else None,
        series_description=series_description[:64],
    )


def decode_seg(seg: Dataset, source: Sequence[Dataset]) -> SegContent:
    """A SEG as content on the ordered ``source`` grid: its segments combined in one label map (they must not
    overlap), named as its SegmentSequence names them."""
    parsed = _parsed(seg)
    label_map = _pixels(parsed, source, combine_segments=True)
    names = _segment_names(parsed)
    counts = _voxel_counts(label_map)
    return SegContent(label_map, names, {number: counts.get(number, 0) for number in names}, _segment_codes(parsed))


def segment_masks(seg: Dataset, source: Sequence[Dataset]) -> tuple[list[str], list[np.ndarray]]:
    """Each segment of a SEG as a mask on the ordered ``source`` grid, in segment-number order, with its label;
    segments may overlap, and a fractional one counts where it is above one half."""
    parsed = _parsed(seg)
    names = _segment_names(parsed)
    numbers = sorted(names)
    pixels = _pixels(parsed, source, combine_segments=False, segment_numbers=numbers)
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


def _segment_codes(parsed: hd.seg.Segmentation) -> dict[int, tuple[Code, Code]]:
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
