"""Label maps <-> DICOM SEG, written and read with highdicom."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import highdicom as hd
import numpy as np
from pydicom import Dataset
from pydicom.sr.coding import Code

from awesomme import __version__
from awesomme.core.errors import InvalidInput

__all__ = ["ALGORITHM_TYPES", "build_seg", "seg_label_map", "segment_summary"]

ALGORITHM_TYPES = ("MANUAL", "SEMIAUTOMATIC", "AUTOMATIC")
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


def build_seg(
    source: Sequence[Dataset],
    label_map: np.ndarray,
    segment_labels: Mapping[int, str],
    *,
    algorithm_type: str,
    series_description: str,
    content_description: str,
    author: str | None = None,
    algorithm_name: str | None = None,
    algorithm_version: str = "",
) -> Dataset:
    """A SEG for ``label_map`` (slice, row, column; value = segment number) over the ordered ``source``."""
    if algorithm_type not in ALGORITHM_TYPES:
        raise InvalidInput(f"algorithm type {algorithm_type!r} is not one of {', '.join(ALGORITHM_TYPES)}")
    present = sorted(int(v) for v in np.unique(label_map) if v != 0)
    if not present:
        raise InvalidInput("the label is empty: no voxel is segmented")
    descriptions = segment_descriptions(present, segment_labels, algorithm_type, algorithm_name, algorithm_version)
    # highdicom wants segment numbers 1..N: renumber, keeping the caller's labels.
    renumbered = np.zeros(label_map.shape, dtype=np.uint8 if len(present) < 256 else np.uint16)
    for index, number in enumerate(present, start=1):
        renumbered[label_map == number] = index
    return new_segmentation(
        source, renumbered, descriptions, algorithm_type, author, content_description, series_description
    )


def segment_descriptions(
    present: Sequence[int],
    segment_labels: Mapping[int, str],
    algorithm_type: str,
    algorithm_name: str | None,
    algorithm_version: str,
) -> list[hd.seg.SegmentDescription]:
    """One description per segment number in ``present``, numbered 1..N as highdicom wants, keeping their labels."""
    identification = None
    if algorithm_type != "MANUAL":
        identification = hd.AlgorithmIdentificationSequence(
            name=algorithm_name or "AWESOMME", version=algorithm_version or __version__, family=ARTIFICIAL_INTELLIGENCE
        )
    descriptions = []
    for index, number in enumerate(present, start=1):
        label = segment_labels.get(number, f"Segment {number}")[:64]
        category, kind = SEGMENT_CODES.get(label.lower(), (TISSUE, TISSUE))
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=index,
                segment_label=label,
                segmented_property_category=category,
                segmented_property_type=kind,
                algorithm_type=algorithm_type,
                algorithm_identification=identification,
            )
        )
    return descriptions


def new_segmentation(
    source: Sequence[Dataset],
    pixel_array: np.ndarray,
    descriptions: list[hd.seg.SegmentDescription],
    algorithm_type: str,
    author: str | None,
    content_description: str,
    series_description: str,
) -> hd.seg.Segmentation:
    """The platform's binary SEG of ``source`` (segments numbered 1..N in ``pixel_array``), as every writer makes it."""
    return hd.seg.Segmentation(
        source_images=list(source),
        pixel_array=pixel_array,
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
        content_creator_name=author if algorithm_type == "MANUAL" or author else None,
        series_description=series_description[:64],
    )


def segment_summary(label_map: np.ndarray, names: Mapping[int, str], voxel_volume_ml: float) -> list[dict[str, Any]]:
    """Number, label and volume (mL) of each segment present, as recorded and listed."""
    values, counts = np.unique(label_map[label_map > 0], return_counts=True)
    return [
        {
            "number": int(v),
            "label": names.get(int(v), f"Segment {int(v)}"),
            "volume_ml": round(float(c) * voxel_volume_ml, 3),
        }
        for v, c in zip(values, counts, strict=True)
    ]


def seg_label_map(seg: Dataset, source: Sequence[Dataset]) -> np.ndarray:
    """Decode a SEG to a label map on the ordered ``source`` grid (slice, row, column)."""
    # A SEG we just built is parsed already (and holds a lookup table that cannot be copied).
    parsed = seg if isinstance(seg, hd.seg.Segmentation) else hd.seg.Segmentation.from_dataset(seg, copy=False)
    try:
        return parsed.get_pixels_by_source_instance(
            source_sop_instance_uids=[str(ds.SOPInstanceUID) for ds in source],
            combine_segments=True,
            assert_missing_frames_are_empty=True,
        )
    except (ValueError, KeyError, RuntimeError) as error:
        raise InvalidInput(f"the SEG does not fit its series: {error}") from error
