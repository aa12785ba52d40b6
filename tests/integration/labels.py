"""Label maps saved as SEGs through MONAI Label's own route, as a viewer saves them (shared by the analysis tests)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import nibabel as nib
import numpy as np

from tests.integration.conftest import Account, StoredPatient, client_for


def save_label_map(
    server_url: str, account: Account, patient: StoredPatient, label: np.ndarray, author: str, names: dict[int, str]
) -> str:
    """Store ``label`` (slice, row, column) as a final label of the patient's series; returns the SEG's UID."""
    path = Path(patient.patient.dicom_files[0]).parent / f"label-{uuid.uuid4().hex}.nii.gz"
    nib.save(nib.Nifti1Image(np.ascontiguousarray(label.transpose(2, 1, 0)), patient.patient.affine), str(path))
    params = {"label_info": [{"name": name, "idx": idx} for idx, name in names.items()], "author": author}
    with client_for(server_url, account) as http:
        reply = http.put(
            "/datastore/label",
            params={"image": patient.patient.series_uid, "tag": "final"},
            files={"label": (path.name, path.read_bytes())},
            data={"params": json.dumps(params)},
        )
    path.unlink()
    assert reply.status_code == 200, reply.text
    return str(reply.json()["label"])
