"""Demo data: phantom patients generated from fixed training seeds and stored in Orthanc, once."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pydicom

from awesomme.core.config import Settings
from awesomme.orthanc.client import OrthancClient
from awesomme.orthanc.errors import NotFound
from awesomme.phantoms import generate_patient

__all__ = ["DEMO_PATIENTS", "SeededSeries", "seed_demo"]

# Seeds below 50000 are for training and demos; evaluation seeds are never seeded.
DEMO_PATIENTS: tuple[tuple[str, int], ...] = tuple(
    [("osteosarcoma-mr", seed) for seed in range(1, 7)] + [("chest-ct", seed) for seed in range(1, 7)]
)


@dataclass(frozen=True)
class SeededSeries:
    kind: str
    seed: int
    series_uid: str
    study_uid: str


def _manifest_path(settings: Settings) -> Path:
    return settings.var_dir / "demo-data.json"


def _present(client: OrthancClient, uid: str) -> bool:
    try:
        client.series_state(uid)
    except NotFound:
        return False
    return True


def seed_demo(
    settings: Settings, client: OrthancClient, patients: tuple[tuple[str, int], ...] = DEMO_PATIENTS
) -> list[SeededSeries]:
    """Store each demo patient unless Orthanc has it already (the manifest remembers what was seeded)."""
    manifest = _manifest_path(settings)
    known = (
        {(s["kind"], s["seed"]): SeededSeries(**s) for s in json.loads(manifest.read_text())}
        if manifest.is_file()
        else {}
    )
    seeded: list[SeededSeries] = []
    for kind, seed in patients:
        entry = known.get((kind, seed))
        if entry is None or not _present(client, entry.series_uid):
            with tempfile.TemporaryDirectory(prefix="awesomme-seed-") as scratch:
                patient = generate_patient(kind, seed, Path(scratch))
                client.store([pydicom.dcmread(path) for path in patient.dicom_files])
                entry = SeededSeries(kind, seed, patient.series_uid, patient.study_uid)
        seeded.append(entry)
    manifest.write_text(json.dumps([s.__dict__ for s in seeded], indent=2))
    return seeded
