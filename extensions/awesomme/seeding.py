"""Demo data: phantom patients generated from fixed training seeds and stored in Orthanc, once."""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pydicom
from sqlalchemy import select

from awesomme.core.config import Settings
from awesomme.core.db import session_scope
from awesomme.core.errors import NotFound
from awesomme.core.visibility import EVERYTHING, visible_as
from awesomme.models import CohortItem, User
from awesomme.orthanc.cache import SeriesCache
from awesomme.orthanc.client import OrthancClient
from awesomme.orthanc.datastore import OrthancDatastore
from awesomme.phantoms import generate_patient
from awesomme.services import identity
from awesomme.services.cohorts import ensure_cohort
from awesomme.services.seg_store import SegStore

__all__ = ["DEMO_COHORTS", "DEMO_PATIENTS", "SeededSeries", "ensure_demo_admin", "ensure_demo_cohorts", "seed_demo"]

# Seeds below 50000 are for training and demos; evaluation seeds are never seeded.
DEMO_PATIENTS: tuple[tuple[str, int], ...] = tuple(
    [("osteosarcoma-mr", seed) for seed in range(1, 7)] + [("chest-ct", seed) for seed in range(1, 7)]
)


DEMO_ADMIN = "admin"
# The first patients of each kind come with their ground truth saved as a final label (so /train has something
# to learn from out of the box); the others stay unlabelled for active learning.
DEMO_LABELLED_SEEDS = range(1, 5)
DEMO_LABEL = {"osteosarcoma-mr": "tumour", "chest-ct": "lung"}
TRUTH_AUTHOR = "PHANTOM^TRUTH"
# Demo cohort of each kind of patient; the shipped models name these cohorts in their YAML.
DEMO_COHORTS = {
    "osteosarcoma-mr": ("osteosarcoma", "Demo: osteosarcoma MR phantoms (synthetic, no real patient)"),
    "chest-ct": ("lung", "Demo: chest CT phantoms with lungs and nodules (synthetic, no real patient)"),
}


def ensure_demo_admin(settings: Settings) -> Path:
    """The demo platform admin with a generated password, written to a 0600 file under var/, made once."""
    password_file = settings.var_dir / "admin-password"
    with session_scope() as session:
        if session.scalar(select(User).where(User.username == DEMO_ADMIN)) is not None:
            return password_file
        password = secrets.token_urlsafe(18)
        identity.create_user(session, settings, DEMO_ADMIN, password, admin=True)
        password_file.unlink(missing_ok=True)
        descriptor = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(password + "\n")
    return password_file


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
    cache = SeriesCache(settings.cache_dir, settings.cache_max_bytes)
    datastore = OrthancDatastore(client, cache, SegStore(client, cache), settings.upload_max_bytes)
    seeded: list[SeededSeries] = []
    for kind, seed in patients:
        entry = known.get((kind, seed))
        if entry is None or not _present(client, entry.series_uid):
            with tempfile.TemporaryDirectory(prefix="awesomme-seed-") as scratch:
                patient = generate_patient(kind, seed, Path(scratch))
                client.store([pydicom.dcmread(path) for path in patient.dicom_files])
                if seed in DEMO_LABELLED_SEEDS:
                    structure = DEMO_LABEL[kind]
                    truth = str(patient.truth[structure])
                    with visible_as(EVERYTHING):  # the platform's own job: it names its scope (no request sets one)
                        datastore.save_declared_label(patient.series_uid, truth, "final", TRUTH_AUTHOR, structure)
                entry = SeededSeries(kind, seed, patient.series_uid, patient.study_uid)
        seeded.append(entry)
    manifest.write_text(json.dumps([s.__dict__ for s in seeded], indent=2))
    return seeded


def ensure_demo_cohorts(seeded: list[SeededSeries]) -> dict[str, int]:
    """The demo cohorts, owned by the demo admin, holding the seeded studies (idempotent)."""
    ids = {}
    with session_scope() as session:
        owner = session.scalar(select(User).where(User.username == DEMO_ADMIN))
        if owner is None:
            raise NotFound(f"the demo admin {DEMO_ADMIN} does not exist: run ensure_demo_admin first")
        for kind, (name, description) in DEMO_COHORTS.items():
            cohort = ensure_cohort(session, owner, name, description, identified=True)  # synthetic phantoms
            ids[name] = cohort.id
            studies = {s.study_uid for s in seeded if s.kind == kind}
            present = set(
                session.scalars(
                    select(CohortItem.study_uid).where(CohortItem.cohort_id == cohort.id, CohortItem.series_uid == "")
                )
            )
            for study_uid in sorted(studies - present):
                session.add(CohortItem(cohort_id=cohort.id, study_uid=study_uid, added_by=owner.username))
    return ids
