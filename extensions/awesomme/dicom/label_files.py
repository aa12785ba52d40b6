"""Label files (NIfTI, NRRD) read onto a series' grid, and written back in it, as MONAI Label exchanges labels.

A label map is indexed (slice, row, column) like a volume; its values are segment numbers, 0 the background.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
from isal import igzip

from awesomme.core.errors import InvalidInput
from awesomme.dicom.volumes import LPS_TO_RAS, Grid

__all__ = ["AFFINE_TOLERANCE_MM", "LABEL_FILE_SUFFIXES", "read_label_file", "write_label_file"]

LABEL_FILE_SUFFIXES = (".nii.gz", ".nii", ".nrrd")
# A label file's affine may differ from the series' by rounding only (mm).
AFFINE_TOLERANCE_MM = 1e-2


def read_label_file(path: Path, grid: Grid) -> np.ndarray:
    """A NIfTI or NRRD label file as a label map on ``grid``; a grid mismatch is a clear error."""
    name = path.name.lower()
    try:
        if name.endswith(".nrrd") or name.endswith(".seg.nrrd"):
            data, header = nrrd.read(str(path))
            affine = _nrrd_affine(header)
        else:
            image = nib.load(str(path))
            assert isinstance(image, nib.spatialimages.SpatialImage)
            data = np.asanyarray(image.dataobj)
            affine = image.affine
    except Exception as error:  # the readers raise many types for a damaged file
        reason = str(error).replace(str(path), "the file")  # the reader names our temporary file: never answered
        raise InvalidInput(f"the label file cannot be read as NIfTI or NRRD: {reason[:200]}") from error
    data = np.squeeze(data)
    expected = grid.shape[::-1]
    if data.shape != expected:
        raise InvalidInput(f"label shape {tuple(data.shape)} (x, y, z) does not match the series' {expected}")
    if affine is not None and not np.allclose(affine, np.eye(4)):
        error_mm = float(np.abs(affine[:3, :] - grid.affine[:3, :]).max())
        if error_mm > AFFINE_TOLERANCE_MM:
            raise InvalidInput(f"label geometry differs from the series' by up to {error_mm:.3f} mm")
    if data.dtype.kind == "f" and not np.all(np.equal(np.mod(data, 1), 0)):
        raise InvalidInput("label values must be whole segment numbers")
    if data.min() < 0 or data.max() > 65535:
        raise InvalidInput("label values must lie in 0..65535")
    return np.ascontiguousarray(data.transpose(2, 1, 0)).astype(np.uint16)


def write_label_file(label_map: np.ndarray, grid: Grid, path: Path) -> Path:
    """The reverse of ``read_label_file``: NIfTI or NRRD by the path's suffix, in the series' own grid."""
    # (column, row, slice) as a view: both writers store Fortran order, i.e. the (slice, row, column) buffer as is
    data = label_map.transpose(2, 1, 0)
    if path.name.endswith(".nrrd"):
        lps = np.linalg.inv(LPS_TO_RAS) @ grid.affine
        header = {"space": "left-posterior-superior", "space directions": lps[:3, :3].T, "space origin": lps[:3, 3]}
        nrrd.write(str(path), data, header)
    else:
        content = nib.Nifti1Image(data, grid.affine).to_bytes()
        # .nii.gz, every inference's answer: ISA-L's gzip (the same format as zlib's) at level 1, 4-5x faster; in
        # one call, which holds the GIL twice instead of at each of nibabel's chunks (a SEG is encoded meanwhile).
        path.write_bytes(igzip.compress(content, compresslevel=1) if path.name.endswith(".gz") else content)
    return path


def _nrrd_affine(header: dict) -> np.ndarray | None:
    directions = header.get("space directions")
    origin = header.get("space origin")
    if directions is None or origin is None:
        return None
    lps = np.eye(4)
    lps[:3, :3] = np.asarray(directions, dtype=float).T
    lps[:3, 3] = np.asarray(origin, dtype=float)
    space = str(header.get("space", "left-posterior-superior"))
    return LPS_TO_RAS @ lps if space.startswith("left") else lps
