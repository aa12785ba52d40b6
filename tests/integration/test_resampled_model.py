"""A model declared at 1.5 mm isotropic on a 0.7 x 0.7 x 3 mm axial MR series stored in Orthanc: the series goes
through Orthanc and the platform's decode, the mask comes back onto the series' grid, and its SEG (stored and read
back) covers the truth resampled by SimpleITK on that grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from highdicom.seg import SegmentAlgorithmTypeValues
from pydicom.uid import generate_uid

from awesomme.dicom.seg import decode_seg, encode_seg, seg_content
from awesomme.dicom.volumes import sort_by_position, volume_from_datasets
from awesomme.inference.predict import predict
from awesomme.orthanc.client import OrthancClient
from awesomme.phantoms import generate_patient
from tests.unit.inference.test_resampling import (
    SERIES_SHAPE,
    BoxErosion,
    dice,
    model_config,
    series_affine,
    series_volume,
    to_sitk,
    truth_on_series_grid,
)


def test_a_1_5_mm_models_seg_lies_on_the_0_7_x_0_7_x_3_mm_series_grid_over_the_truth(
    orthanc: OrthancClient, tmp_path: Path
) -> None:
    """A phantom MR re-gridded to 0.7 x 0.7 x 3 mm with an ellipsoid drawn in: stored, read back, segmented."""
    patient = generate_patient("osteosarcoma-mr", 2701, tmp_path, shape=SERIES_SHAPE)
    datasets = sort_by_position([pydicom.dcmread(path) for path in patient.dicom_files])
    affine = series_affine()  # axial, DICOM's LPS rows and columns: RAS (-x, -y)
    pixels = np.rint(series_volume(affine)).astype(np.uint16)
    series_uid = generate_uid()
    for k, ds in enumerate(datasets):
        ds.SeriesInstanceUID, ds.SOPInstanceUID = series_uid, generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PixelSpacing, ds.SliceThickness = [0.7, 0.7], 3.0
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-affine[0, 3], -affine[1, 3], affine[2, 3] + 3.0 * k]
        ds.PixelData = pixels[k].astype("<u2").tobytes()
    orthanc.store(datasets)

    stored = orthanc.retrieve_series(patient.study_uid, series_uid)
    volume = volume_from_datasets(stored)
    assert np.allclose(volume.affine, affine, atol=1e-3)
    label_map = predict(BoxErosion().eval(), volume.array, model_config(geometry=True), volume.affine).label_map
    truth = truth_on_series_grid(to_sitk(volume.array.astype(np.float32), volume.affine))
    assert dice(label_map == 1, truth == 1) > 0.9

    source = sort_by_position(stored)
    seg = encode_seg(
        source,
        seg_content(label_map, {1: "tumour"}),
        algorithm_type=SegmentAlgorithmTypeValues.AUTOMATIC,
        series_description="resampled 1.5 mm",
        content_description="resampled 1.5 mm",
        algorithm_name="box_erosion",
        algorithm_version="1",
    )
    orthanc.store([seg])
    read_back = orthanc.retrieve_series(patient.study_uid, str(seg.SeriesInstanceUID))
    decoded = decode_seg(read_back[0], source).label_map
    assert decoded.shape == volume.array.shape
    assert np.array_equal(decoded, label_map)
