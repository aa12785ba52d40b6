"""Import jobs: DICOM files (or one zip of them) and legacy NIfTI images with their masks, into one cohort.

``start`` checks everything it can before answering (the caller's right on the cohort, the archive's guards, the
sheet), records the job and runs it on a thread of its own. The job reads every file, refuses the ones it cannot
use one by one (the report names the file and why), de-identifies each instance with the cohort's policy
(``_deidentify``: the one door to the de-identification engine), and stores through the platform's STOW
(``services.stow``): its checks, its verification and its roll-back, so a batch that fails leaves nothing stored.
DICOM files are stored in chunks while the next ones are read (``_PipelinedStore``: a refused chunk, or a job that
fails, deletes what the chunks before it stored); a NIfTI image is one STOW per series, its masks then go through the
segmentation import.
Re-importing the same files maps to the same UIDs and is reported ``already present``.

The identity map (original and pseudonymous patient IDs, study and series UIDs) is never in the database: it is
written under ``var/imports/`` encrypted with a key that lives in this process only, handed once to the importer,
then deleted; it is deleted after 24 hours, and a restart loses the key (and the next sweep the file).
"""

from __future__ import annotations

import contextvars
import csv
import hashlib
import io
import logging
import struct
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from pydicom.dataset import Dataset
from pydicom.uid import UID
from sqlalchemy import select
from sqlalchemy.orm import Session

from awesomme.core import audit
from awesomme.core.cohort_keys import cohort_key
from awesomme.core.config import get_settings
from awesomme.core.db import row_id, session_scope
from awesomme.core.errors import AwesommeError, Forbidden, Gone, InvalidInput, NotFound, excerpt
from awesomme.core.visibility import Principal, current_visibility, visibility_of
from awesomme.dicom.deidentify import DeidentificationPolicy, DeidentifiedInstance, deidentify, encode
from awesomme.dicom.nifti_series import (
    NIFTI_DERIVATION,
    NiftiRefused,
    SeriesAttributes,
    keyed_uid,
    read_nifti,
    series_from_nifti,
)
from awesomme.intake.archive import ArchiveLimits, UploadedFile, is_zip, unpack
from awesomme.intake.sheet import ImageRow, parse_sheet
from awesomme.models import Cohort, CohortItem, ImportJob, Segmentation, SegmentationOrigin
from awesomme.orthanc.checked_instance import CheckedInstance, read_checked
from awesomme.orthanc.client import get_client
from awesomme.orthanc.datastore import OrthancDatastore
from awesomme.services import segmentations, stow
from awesomme.services.cohorts import attach_stored
from awesomme.services.deidentification import policy_of

__all__ = [
    "KINDS", "MAPPING_TTL", "administered_cohort", "job_report", "list_jobs", "start", "start_retrieval",
    "take_mapping",
]  # fmt: skip

logger = logging.getLogger(__name__)
KINDS = ("dicom", "nifti")
MAPPING_TTL = timedelta(hours=24)
MAPPING_NOTE = (
    "the identity map is yours only, downloadable once at /api/imports/{id}/mapping.csv; it is kept encrypted under "
    "var/ for at most 24 hours and is lost if the server restarts"
)
_MAPPING_COLUMNS = (
    "file",
    "original_patient_id",
    "patient_id",
    "original_study_uid",
    "study_uid",
    "original_series_uid",
    "series_uid",
    "date_shift_days",
)
_KEYS: dict[int, tuple[bytes, datetime]] = {}  # job id -> (Fernet key, expiry): in memory only
_KEYS_LOCK = threading.Lock()
_ONE_JOB_AT_A_TIME = threading.Lock()
_ACTIVE: set[int] = set()  # jobs this process runs: a "running" job not here was cut short by a restart


# -- the de-identification engine's door -----------------------------------------------------------------------
def _policy_and_key(cohort_id: int) -> tuple[DeidentificationPolicy, bytes]:
    """The cohort's de-identification policy and pseudonymisation key."""
    with session_scope() as session:
        cohort = session.get(Cohort, cohort_id)
        if cohort is None:
            raise NotFound(f"no cohort {cohort_id}")
        policy = policy_of(cohort)
    return policy, (b"" if policy.identified else cohort_key(get_settings(), cohort_id))


def _deidentify(
    cohort: tuple[DeidentificationPolicy, bytes], ds: Dataset, pseudonym: str | None, keep_uids: set[str]
) -> DeidentifiedInstance:
    """The instance as the cohort's policy lets it into Orthanc (refused: ``DeidentificationRefused``, a 422)."""
    policy, key = cohort
    return deidentify(ds, policy, key, pseudonym=pseudonym, keep_uids=keep_uids)


# -- starting ---------------------------------------------------------------------------------------------------
def _target_cohort(principal: Principal, reference: str) -> Cohort:
    """The cohort named by id or name, if the caller administers it (another's: 404, a member's: 403)."""
    with session_scope() as session:
        cohort_id = row_id(reference)
        query = select(Cohort).where(Cohort.id == cohort_id if cohort_id is not None else Cohort.name == reference)
        cohort = session.scalar(query)
        if cohort is None or principal.role_in(cohort.id) is None:
            raise NotFound(f"no cohort {excerpt(reference)} among yours")
        if not principal.administers(cohort.id):
            raise Forbidden(f"only an admin of cohort {cohort.name} may import data into it")
        session.expunge(cohort)
        return cohort


def _limits() -> ArchiveLimits:
    settings = get_settings()
    return ArchiveLimits(settings.import_zip_max_members, settings.import_zip_max_bytes, settings.import_zip_max_ratio)


def _expanded(files: list[UploadedFile]) -> list[UploadedFile]:
    out: list[UploadedFile] = []
    for upload in files:
        out.extend(unpack(upload.name, upload.data, _limits()) if is_zip(upload.name, upload.data) else [upload])
    if not out:
        raise InvalidInput("files: no file to import")
    return out


def _by_base_name(files: list[UploadedFile], images: list[ImageRow]) -> dict[str, UploadedFile]:
    """The upload of each file the sheet names (by its name, or its path's last part inside a zip)."""
    named: dict[str, UploadedFile] = {}
    for upload in files:
        base = upload.name.rsplit(":", 1)[-1].rsplit("/", 1)[-1]
        if base in named:
            raise InvalidInput(f"files: two files are named {excerpt(base)}")
        named[base] = upload
    wanted = [(image.row, "image", image.file) for image in images]
    wanted += [(mask.row, "mask", mask.file) for image in images for mask in image.masks]
    for row, column, name in wanted:
        if name not in named:
            raise InvalidInput(f"sheet row {row}, column {column}: {excerpt(name)} is not among the uploaded files")
    listed = {name for _, _, name in wanted}
    extra = sorted(set(named) - listed)
    if extra:
        raise InvalidInput(f"files: {excerpt(extra[0])} is in no sheet row")
    return named


def start(
    principal: Principal,
    datastore: OrthancDatastore,
    cohort: str,
    kind: str,
    files: list[UploadedFile],
    sheet: UploadedFile | None,
) -> int:
    """Check the request, record the job and start it; its id."""
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}")
    target = _target_cohort(principal, cohort)
    expanded = _expanded(files)
    work: Callable[[int], None]
    if kind == "nifti":
        if sheet is None:
            raise InvalidInput("sheet: a NIfTI import needs its metadata sheet (CSV)")
        images = parse_sheet(sheet.data, sheet.name)
        named = _by_base_name(expanded, images)
        work = lambda job_id: _run_nifti(job_id, principal, datastore, target.id, images, named)  # noqa: E731
    else:
        if sheet is not None:
            raise InvalidInput("sheet: a DICOM import takes no sheet (its headers say what each file is)")
        work = lambda job_id: _run_dicom(job_id, principal, target.id, expanded)  # noqa: E731
    return _launch(principal, target, kind, len(expanded), work, {"kind": kind, "files": len(expanded)})


def administered_cohort(principal: Principal, reference: str) -> Cohort:
    """The cohort named by id or name, if the caller administers it (another's: 404, a member's: 403)."""
    return _target_cohort(principal, reference)


def start_retrieval(
    principal: Principal, target: Cohort, instances: int, fetch: Callable[[], Iterable[UploadedFile]],
    pseudonym: str | None, params: dict[str, Any],
) -> int:  # fmt: skip
    """An import of the DICOM instances a retrieval (a PACS peer) delivers one by one: each is de-identified as it
    arrives and stored in chunks, joined to the cohort at the end (nothing stays if the retrieval fails); the same
    report and identity map."""
    work = lambda job_id: _run_dicom(job_id, principal, target.id, fetch(), pseudonym)  # noqa: E731
    return _launch(principal, target, "pacs", instances, work, {"kind": "pacs", "files": instances, **params})


def _launch(
    principal: Principal, target: Cohort, kind: str, files: int, work: Callable[[int], None], params: dict[str, Any]
) -> int:
    _sweep()
    with session_scope() as session:
        job = ImportJob(
            user_id=principal.user_id, cohort_id=target.id, kind=kind, status="running", files=files,
            done_files=0, items=[], error="", mapping_state="none",
        )  # fmt: skip
        session.add(job)
        session.flush()
        job_id = job.id
        _ACTIVE.add(job_id)  # before the row is visible: never taken for an orphan
        audit.record(
            session, "import.start", target=f"import {job_id}", cohort=str(target.id), params=params,
        )  # fmt: skip
    context = contextvars.copy_context()  # the caller's identity for the journal, as in the request
    thread = threading.Thread(target=context.run, args=(_guarded, job_id, work), name=f"import-{job_id}", daemon=True)
    thread.start()
    return job_id


def _guarded(job_id: int, work: Callable[[int], None]) -> None:
    with _ONE_JOB_AT_A_TIME:
        try:
            work(job_id)
        except Exception as error:  # the job must end in a state, whatever happened
            logger.exception("Import %s failed", job_id)
            message = str(error) if isinstance(error, AwesommeError) else f"internal error ({type(error).__name__})"
            _finish(job_id, "failed", [], error=message, rows=[])
        finally:
            _ACTIVE.discard(job_id)


def _end_orphans(session: Session, jobs: list[ImportJob]) -> None:
    """Jobs left running by an earlier server process end as failed (their thread is gone)."""
    for job in jobs:
        if job.status == "running" and job.id not in _ACTIVE:
            job.status, job.error = "failed", "the server stopped during the import: import the files again"
            job.finished_at = datetime.now(UTC)
    session.flush()


# -- progress and end -------------------------------------------------------------------------------------------
def _progress(job_id: int, done: int) -> None:
    with session_scope() as session:
        job = session.get(ImportJob, job_id)
        if job is not None:
            job.done_files = done


def _finish(
    job_id: int, status: str, items: list[dict[str, Any]], *, error: str = "", rows: list[dict[str, str]]
) -> None:
    mapping = "ready" if rows and status != "failed" else "none"
    if mapping == "ready":
        _write_mapping(job_id, rows)
    with session_scope() as session:
        job = session.get(ImportJob, job_id)
        if job is None:
            return
        job.status, job.error, job.mapping_state = status, error[:2000], mapping
        job.items = items
        job.done_files = job.files
        job.finished_at = datetime.now(UTC)
        stored = [item for item in items if item.get("status") == "stored"]
        present = [item for item in items if item.get("status") == "already present"]
        audit.record(
            session, "import.finish", "success" if status == "done" else "failure", target=f"import {job_id}",
            cohort=str(job.cohort_id),
            params={
                "kind": job.kind, "files": job.files, "series_stored": len(stored), "already_present": len(present),
                "refused": sum(1 for item in items if "error" in item), "status": status,
            },
        )  # fmt: skip


# -- DICOM ------------------------------------------------------------------------------------------------------
def _cohort_uids(cohort_id: int) -> set[str]:
    with session_scope() as session:
        rows = session.execute(
            select(CohortItem.study_uid, CohortItem.series_uid).where(CohortItem.cohort_id == cohort_id)
        )
        return {uid for pair in rows for uid in pair if uid}


def _decodable(ds: Dataset) -> str | None:
    """Why the instance's pixels cannot be decoded here, or None."""
    if "PixelData" not in ds:
        return None
    try:
        ds.pixel_array  # noqa: B018 (decoding is the check)
    except Exception as error:  # pydicom's handlers raise several kinds
        syntax = ds.file_meta.get("TransferSyntaxUID", "unknown")
        return f"PixelData cannot be decoded (transfer syntax {syntax}): {excerpt(error, 120)}"
    return None


def _map_row(name: str, before: Dataset, result: DeidentifiedInstance) -> dict[str, str]:
    after = result.dataset
    return {
        "file": name,
        "original_patient_id": str(before.get("PatientID", "")),
        "patient_id": str(after.get("PatientID", "")),
        "original_study_uid": str(before.get("StudyInstanceUID", "")),
        "study_uid": str(after.get("StudyInstanceUID", "")),
        "original_series_uid": str(before.get("SeriesInstanceUID", "")),
        "series_uid": str(after.get("SeriesInstanceUID", "")),
        "date_shift_days": str(result.date_shift_days),
    }


def _encoded(upload_name: str, dataset: Dataset) -> CheckedInstance:
    """The de-identified instance as Orthanc receives it: our own encoding of the dataset the engine wrote, with its
    file meta naming it (read once, checked, changed, encoded once: no second parse of our own bytes)."""
    meta = dataset.file_meta
    meta.MediaStorageSOPInstanceUID = UID(str(dataset.SOPInstanceUID))
    if "SOPClassUID" in dataset:
        meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    try:
        data = encode(dataset)
    except (ValueError, TypeError, KeyError, AttributeError, struct.error) as error:
        raise InvalidInput(f"{upload_name}: cannot be encoded once de-identified ({type(error).__name__})") from None
    return CheckedInstance(
        study_uid=str(dataset.StudyInstanceUID),
        series_uid=str(dataset.SeriesInstanceUID),
        sop_instance_uid=str(dataset.SOPInstanceUID),
        patient_id=str(dataset.get("PatientID", "") or ""),
        encoded=data,
        original_md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
    )


def _read_dicom(
    index: int, upload: UploadedFile, cohort: tuple[DeidentificationPolicy, bytes], keep: set[str],
    pseudonym: str | None = None,
) -> tuple[Dataset, DeidentifiedInstance, CheckedInstance]:  # fmt: skip
    """(original, de-identified, as stored) or InvalidInput naming the file and what is wrong with it. The file is
    read once, with every check a STOW part gets (``read_checked``), and the de-identified result encoded once."""
    try:
        original = read_checked(upload.data, index).dataset
    except AwesommeError as error:  # MalformedRequest, UnsupportedMediaType: what a STOW would answer
        message = str(error)  # about "part <index>", as a STOW answers: here, about the file
        if message.startswith(f"part {index}: "):
            raise InvalidInput(f"{upload.name}: {message.removeprefix(f'part {index}: ')}") from None
        raise InvalidInput(f"{upload.name} {message.removeprefix(f'part {index} ')}") from None
    problem = _decodable(original)
    if problem:
        raise InvalidInput(f"{upload.name}: {problem}")
    try:
        result = _deidentify(cohort, original, pseudonym, keep)
    except InvalidInput as error:
        raise InvalidInput(f"{upload.name}: {error}") from None
    except Exception as error:
        logger.warning("Import: %s could not be de-identified", upload.name, exc_info=True)
        raise InvalidInput(f"{upload.name}: cannot be de-identified ({type(error).__name__})") from None
    return original, result, _encoded(upload.name, result.dataset)


def _already_stored(uids: list[str]) -> set[str]:
    hits = get_client().find("Instance", {"SOPInstanceUID": sorted(uids)}) if uids else []
    return {hit["MainDicomTags"]["SOPInstanceUID"] for hit in hits}


def _store(principal: Principal, cohort_id: int, instances: list[CheckedInstance], before: set[str]) -> None:
    """Store the de-identified instances through the platform's STOW (its store checks, verification and roll-back),
    then attach their series to the cohort. ``before``: those of them Orthanc held already (kept on a roll-back).
    STOW's own cohort path is not taken: it would de-identify them again."""
    with session_scope() as session:
        visibility = visibility_of(session, principal)
    stow.store_checked(principal, visibility, None, instances)
    pairs = {(i.study_uid, i.series_uid) for i in instances}
    try:
        with session_scope() as session:
            attach_stored(session, cohort_id, principal.username, pairs)
            target = " ".join(sorted(series for _, series in pairs))
            audit.record(session, "data.stored", target=target, cohort=str(cohort_id), params={"series": len(pairs)})
    except Exception:
        orthanc = get_client()
        for uid in sorted({i.sop_instance_uid for i in instances} - before):  # nothing half-stored: this import's go
            for orthanc_id in orthanc.lookup_all(uid, "Instance"):
                orthanc.delete_instance(orthanc_id)
        raise


class _PipelinedStore:
    """Stores an import's instances chunk by chunk on a thread of its own, each chunk through ``stow.store_checked``
    (its checks against what Orthanc holds, including the chunks stored before it), while the job reads and
    de-identifies the next files: Orthanc ingests one chunk while the next is prepared. Nothing stays when any chunk
    fails, or when the job fails before the end (``abort``): what this import added is deleted again."""

    CHUNK = 100

    def __init__(self, principal: Principal) -> None:
        self.principal = principal
        self.pending: list[CheckedInstance] = []
        self.futures: list[Future[None]] = []
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-store")
        self.present: set[str] = set()  # SOP Instance UIDs Orthanc held before this import
        self.added: set[str] = set()  # those this import stored

    def add(self, instance: CheckedInstance) -> None:
        self.pending.append(instance)
        if len(self.pending) >= self.CHUNK:
            self._submit()

    def _submit(self) -> None:
        chunk, self.pending = self.pending, []
        if chunk:
            context = contextvars.copy_context()
            self.futures.append(self.executor.submit(context.run, self._store, chunk))

    def _store(self, chunk: list[CheckedInstance]) -> None:
        if any(future.done() and future.exception() for future in self.futures):
            return  # an earlier chunk failed: nothing more goes in
        sops = [instance.sop_instance_uid for instance in chunk]
        before = _already_stored(sops)
        with session_scope() as session:
            visibility = visibility_of(session, self.principal)
        stow.store_checked(self.principal, visibility, None, chunk)
        self.present |= before
        self.added |= set(sops) - before

    def finish(self) -> None:
        """Wait for every chunk; the first failure, after everything this import stored is deleted again."""
        self._submit()
        self.executor.shutdown(wait=True)
        for future in self.futures:
            error = future.exception()
            if error is not None:
                self.abort()
                raise error

    def abort(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
        orthanc = get_client()
        for uid in sorted(self.added):
            for orthanc_id in orthanc.lookup_all(uid, "Instance"):
                orthanc.delete_instance(orthanc_id)
        self.added.clear()


def _attach(principal: Principal, cohort_id: int, pairs: set[tuple[str, str]]) -> None:
    with session_scope() as session:
        attach_stored(session, cohort_id, principal.username, pairs)
        target = " ".join(sorted(series for _, series in pairs))
        audit.record(session, "data.stored", target=target, cohort=str(cohort_id), params={"series": len(pairs)})


def _run_dicom(
    job_id: int, principal: Principal, cohort_id: int, files: Iterable[UploadedFile], pseudonym: str | None = None
) -> None:
    keep = _cohort_uids(cohort_id)
    cohort = _policy_and_key(cohort_id)
    items: list[dict[str, Any]] = []
    rows: list[dict[str, str]] = []
    accepted: dict[str, tuple[str, CheckedInstance]] = {}  # SOP Instance UID -> (file, de-identified, encoded)
    store = _PipelinedStore(principal)
    try:
        for index, upload in enumerate(files, start=1):
            try:
                original, result, instance = _read_dicom(index, upload, cohort, keep, pseudonym)
            except InvalidInput as error:
                items.append({"file": upload.name, "error": str(error)})
                continue
            sop = instance.sop_instance_uid
            if sop in accepted:
                message = f"{upload.name}: SOPInstanceUID same as {accepted[sop][0]}"
                items.append({"file": upload.name, "error": message})
                continue
            accepted[sop] = (upload.name, instance)
            store.add(instance)
            rows.append(_map_row(upload.name, original, result))
            if index % 25 == 0:
                _progress(job_id, index)
        store.finish()
    except AwesommeError as error:
        store.abort()
        _finish(job_id, "failed", items, error=f"nothing was stored: {error}", rows=[])
        return
    except BaseException:
        store.abort()  # a retrieval that failed on the way, or an internal error: nothing stays
        raise
    series: dict[tuple[str, str], list[str]] = {}
    for sop, (_, instance) in accepted.items():
        series.setdefault((instance.study_uid, instance.series_uid), []).append(sop)
    if accepted:
        try:
            _attach(principal, cohort_id, set(series))
        except Exception:
            store.abort()
            raise
    for (study_uid, series_uid), sops in sorted(series.items()):
        status = "already present" if set(sops) <= store.present else "stored"
        items.append({"study_uid": study_uid, "series_uid": series_uid, "instances": len(sops), "status": status})
    _finish(job_id, "done", items, rows=_unique(rows))


def _unique(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """One map row per original series (the first file that named it)."""
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for row in rows:
        seen.setdefault((row["original_study_uid"], row["original_series_uid"]), row)
    return list(seen.values())


# -- legacy NIfTI -----------------------------------------------------------------------------------------------
def _attributes(image: ImageRow, data: bytes) -> SeriesAttributes:
    study_uid = keyed_uid("nifti-study", image.patient_id, image.study_key)
    series_uid = keyed_uid("nifti-series", study_uid, image.modality, image.series_description, hash_of(data))
    return SeriesAttributes(
        modality=image.modality, patient_id=image.patient_id, study_uid=study_uid, series_uid=series_uid,
        frame_of_reference_uid=keyed_uid("nifti-frame", series_uid), source_name=image.file,
        patient_sex=image.patient_sex, patient_age=image.patient_age, study_date=image.study_date,
        series_description=image.series_description, body_part=image.body_part,
    )  # fmt: skip


def hash_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _existing_seg(series_uid: str, sha256: str) -> str | None:
    with session_scope() as session:
        query = (
            select(Segmentation.seg_series_uid)
            .join(SegmentationOrigin, SegmentationOrigin.seg_series_uid == Segmentation.seg_series_uid)
            .where(Segmentation.source_series_uid == series_uid, SegmentationOrigin.source_sha256 == sha256)
        )
        return session.scalar(query)


def _import_masks(
    datastore: OrthancDatastore, principal: Principal, image: ImageRow, named: dict[str, UploadedFile],
    study_uid: str, series_uid: str,
) -> list[dict[str, Any]]:  # fmt: skip
    with session_scope() as session:
        current_visibility.set(visibility_of(session, principal))  # the series stored a moment ago is now visible
    items: list[dict[str, Any]] = []
    for mask in image.masks:
        upload = named[mask.file]
        existing = _existing_seg(series_uid, hash_of(upload.data))
        base = {"file": upload.name, "study_uid": study_uid, "series_uid": series_uid}
        if existing:
            items.append({**base, "seg_uid": existing, "status": "already present"})
            continue
        request = segmentations.ImportRequest(
            series_uid=series_uid, filename=mask.file, label_names=mask.label_map or None,
            algorithm_type=mask.algorithm_type, reader=mask.reader, file_format="nifti",
            algorithm_name="unknown algorithm" if mask.algorithm_type != "MANUAL" else "",
        )  # fmt: skip
        try:
            result = segmentations.import_segmentation(datastore, principal, request, upload.data)
        except AwesommeError as error:
            items.append({"file": upload.name, "error": f"{upload.name} (sheet row {mask.row}, mask): {error}"})
            continue
        items.append({**base, "seg_uid": result["seg_uid"], "status": "stored"})
    return items


def _run_nifti(
    job_id: int, principal: Principal, datastore: OrthancDatastore, cohort_id: int, images: list[ImageRow],
    named: dict[str, UploadedFile],
) -> None:  # fmt: skip
    keep = _cohort_uids(cohort_id)
    cohort = _policy_and_key(cohort_id)
    max_voxels = get_settings().import_nifti_max_voxels
    items: list[dict[str, Any]] = []
    rows: list[dict[str, str]] = []
    done = 0
    for image in images:
        upload = named[image.file]
        done += 1 + len(image.masks)
        try:
            volume = read_nifti(upload.data, max_voxels)
            datasets = series_from_nifti(volume, _attributes(image, upload.data))
            results = [_deidentify(cohort, ds, image.patient_id, keep) for ds in datasets]
        except Exception as error:
            reason = str(error) if isinstance(error, NiftiRefused | InvalidInput) else type(error).__name__
            items.append({"file": upload.name, "error": f"{upload.name} (sheet row {image.row}, image): {reason}"})
            items += [{"file": m.file, "error": f"{m.file}: not imported, its image was refused"} for m in image.masks]
            continue
        out = [result.dataset for result in results]
        for dataset in out:  # the Basic Profile removes descriptions: the conversion's mark, which names no one, stays
            dataset.DerivationDescription = NIFTI_DERIVATION
        study_uid, series_uid = str(out[0].StudyInstanceUID), str(out[0].SeriesInstanceUID)
        sops = {str(ds.SOPInstanceUID) for ds in out}
        before = _already_stored(sorted(sops))
        try:
            _store(principal, cohort_id, [_encoded(upload.name, ds) for ds in out], before)
        except AwesommeError as error:
            items.append(
                {"file": upload.name, "error": f"{upload.name} (sheet row {image.row}): nothing stored: {error}"}
            )
            continue
        status = "already present" if before == sops else "stored"
        items.append({"file": upload.name, "study_uid": study_uid, "series_uid": series_uid, "status": status,
                      "instances": len(out)})  # fmt: skip
        rows.append(_map_row(upload.name, datasets[0], results[0]))
        items += _import_masks(datastore, principal, image, named, study_uid, series_uid)
        _progress(job_id, done)
    _finish(job_id, "done", items, rows=rows)


# -- the identity map -------------------------------------------------------------------------------------------
def _mapping_dir() -> Path:
    directory = get_settings().var_dir / "imports"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory


def _mapping_path(job_id: int) -> Path:
    return _mapping_dir() / f"{job_id}.csv.enc"


def _write_mapping(job_id: int, rows: list[dict[str, str]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_MAPPING_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _csv_safe(value) for key, value in row.items()})
    key = Fernet.generate_key()
    path = _mapping_path(job_id)
    path.touch(mode=0o600)
    path.write_bytes(Fernet(key).encrypt(buffer.getvalue().encode()))
    with _KEYS_LOCK:
        _KEYS[job_id] = (key, datetime.now(UTC) + MAPPING_TTL)
    timer = threading.Timer(MAPPING_TTL.total_seconds(), _forget, args=(job_id, "expired"))
    timer.daemon = True
    timer.start()


def _csv_safe(value: str) -> str:
    """A value a spreadsheet will not run as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _forget(job_id: int, state: str) -> None:
    with _KEYS_LOCK:
        _KEYS.pop(job_id, None)
    _mapping_path(job_id).unlink(missing_ok=True)
    with session_scope() as session:
        job = session.get(ImportJob, job_id)
        if job is not None and job.mapping_state == "ready":
            job.mapping_state = state


def _sweep() -> None:
    """Delete identity maps this process holds no key for (written before a restart) or past their time."""
    now = datetime.now(UTC)
    for path in _mapping_dir().glob("*.csv.enc"):
        job_id = row_id(path.name.split(".", 1)[0])
        with _KEYS_LOCK:
            entry = _KEYS.get(job_id or 0)
        if job_id is None:
            path.unlink(missing_ok=True)
        elif entry is None or entry[1] <= now:
            _forget(job_id, "expired")


def take_mapping(principal: Principal, job_id: int) -> bytes:
    """The identity map of the caller's import, once; then it is gone."""
    _sweep()
    with session_scope() as session:
        job = session.get(ImportJob, job_id)
        if job is None or (job.user_id != principal.user_id and not principal.platform_admin):
            raise NotFound(f"no import {job_id} of yours")
        if job.user_id != principal.user_id:
            raise Forbidden("only the user who imported may read the identity map")
        state = job.mapping_state
    if state == "none":
        raise NotFound(f"import {job_id} has no identity map (still running, failed, or nothing was mapped)")
    with _KEYS_LOCK:
        entry = _KEYS.pop(job_id, None)
    if state != "ready" or entry is None:
        raise Gone(f"the identity map of import {job_id} was downloaded already, expired or lost on a restart")
    path = _mapping_path(job_id)
    try:
        content = Fernet(entry[0]).decrypt(path.read_bytes())
    finally:
        path.unlink(missing_ok=True)
        with session_scope() as session:
            job = session.get(ImportJob, job_id)
            if job is not None:
                job.mapping_state = "taken"
            audit.record(session, "import.mapping", target=f"import {job_id}", cohort=str(job.cohort_id if job else ""))
    return content


# -- reading jobs -----------------------------------------------------------------------------------------------
def _json(job: ImportJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "cohort_id": job.cohort_id,
        "kind": job.kind,
        "status": job.status,
        "files": job.files,
        "done_files": job.done_files,
        "items": job.items,
        "error": job.error or None,
        "created_at": job.created_at.replace(tzinfo=job.created_at.tzinfo or UTC).isoformat(),
        "finished_at": job.finished_at.replace(tzinfo=job.finished_at.tzinfo or UTC).isoformat()
        if job.finished_at
        else None,
        "mapping": job.mapping_state,
        "mapping_note": MAPPING_NOTE.replace("{id}", str(job.id)),
    }


def job_report(principal: Principal, job_id: int) -> dict[str, Any]:
    with session_scope() as session:
        job = session.get(ImportJob, job_id)
        if job is None or (job.user_id != principal.user_id and not principal.platform_admin):
            raise NotFound(f"no import {job_id} of yours")
        _end_orphans(session, [job])
        return _json(job)


def list_jobs(principal: Principal) -> list[dict[str, Any]]:
    with session_scope() as session:
        query = select(ImportJob).where(ImportJob.user_id == principal.user_id).order_by(ImportJob.id.desc())
        jobs = list(session.scalars(query.limit(200)))
        _end_orphans(session, jobs)
        return [_json(job) for job in jobs]
