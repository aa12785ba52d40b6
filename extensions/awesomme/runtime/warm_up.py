"""First-call costs paid at start, before any request waits on them.

highdicom loads its table of DICOM modules (``highdicom._modules``, a module-level dictionary of thousands of
entries) the first time a SEG is encoded, and builds it holding the GIL for about 0.1 s on this class of machine
(several tenths while a model runs on the other cores): every other thread of the server, the event loop included,
stops meanwhile. Encoding and decoding one tiny SEG of a tiny synthetic series at start moves that wait, and any
other lazy first-call work of the SEG path, out of the first inference.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pydicom
from highdicom.seg import SegmentAlgorithmTypeValues

from awesomme.dicom.seg import decode_seg, encode_seg, seg_content
from awesomme.dicom.volumes import sort_by_position
from awesomme.phantoms import generate_patient

__all__ = ["warm_up_seg_codec"]

WARM_UP_SHAPE = (2, 16, 16)


def warm_up_seg_codec(scratch: Path | None = None) -> float:
    """Encode and decode one SEG of a 2x16x16 synthetic series; returns the seconds it took."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="awesomme-warm-up-", dir=scratch) as directory:
        patient = generate_patient("chest-ct", 0, Path(directory), shape=WARM_UP_SHAPE)
        source = sort_by_position([pydicom.dcmread(path) for path in patient.dicom_files])
    label_map = (source[0].pixel_array[None] > -10_000).repeat(len(source), axis=0)  # every voxel: one segment
    seg = encode_seg(
        source,
        seg_content(label_map, {1: "warm-up"}),
        algorithm_type=SegmentAlgorithmTypeValues.MANUAL,
        series_description="warm-up",
        content_description="warm-up",
    )
    decode_seg(seg, source)
    return time.perf_counter() - start
