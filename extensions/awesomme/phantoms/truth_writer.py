"""Write ground truth: NIfTI masks on the DICOM grid and ``clinical.json``.

Files are written byte-for-byte reproducibly (gzip header without timestamp or
name), so regenerating a patient gives identical files.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from numpy.typing import NDArray

from .geometry import Grid


def mask_to_nifti(mask: NDArray[np.uint8], grid: Grid) -> nib.Nifti1Image:
    """NIfTI image of a ``[k, j, i]`` mask whose voxels coincide with the DICOM series."""
    if mask.shape != grid.shape:
        raise ValueError(f"mask shape {mask.shape} != grid {grid.shape}")
    affine = grid.affine_ras()
    image = nib.Nifti1Image(mask.astype(np.uint8, copy=False).transpose(2, 1, 0), affine)
    image.set_data_dtype(np.uint8)
    image.header.set_xyzt_units("mm")
    image.set_qform(affine, code=1)  # scanner-anatomical
    image.set_sform(affine, code=1)
    return image


def write_mask(mask: NDArray[np.uint8], grid: Grid, path: Path) -> Path:
    """Write ``mask`` as ``path`` (``.nii.gz``): uint8, 0/1, same grid as the DICOM."""
    data = mask_to_nifti(mask, grid).to_bytes()
    # level 1: masks are mostly runs of zeros, higher levels cost seconds for little gain
    path.write_bytes(gzip.compress(data, compresslevel=1, mtime=0))
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return round(float(value), 6)
    return value


def write_clinical(clinical: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(_jsonable(clinical), indent=2, sort_keys=True) + "\n")
    return path


def normalise_clinical(clinical: dict[str, Any]) -> dict[str, Any]:
    """The clinical dict exactly as it reads back from ``clinical.json``."""
    result: dict[str, Any] = json.loads(json.dumps(_jsonable(clinical), sort_keys=True))
    return result
