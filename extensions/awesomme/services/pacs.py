"""Hospital PACS peers: their configuration (platform admins), queries and retrievals (cohort admins of a cohort
the peer is allowed for; any other caller finds no such peer).

A retrieval is an import job (``services.imports``): the same report, de-identification with the cohort's policy as
each instance arrives, one store at the end and the once-only identity map. The journal records who asked, the
peer, the cohort and the counts; never a patient identifier or a query value.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from sqlalchemy import select

from awesomme.core import audit
from awesomme.core.config import get_settings
from awesomme.core.db import row_id, session_scope
from awesomme.core.errors import Conflict, InvalidInput, NotFound, excerpt
from awesomme.core.visibility import Principal
from awesomme.intake import pacs as dicom_peer
from awesomme.intake.archive import UploadedFile
from awesomme.models import Cohort, PacsPeer
from awesomme.services import imports

__all__ = ["create_peer", "delete_peer", "echo", "list_peers", "query", "retrieve"]


def _json(peer: PacsPeer) -> dict[str, Any]:
    return {
        "name": peer.name, "ae_title": peer.ae_title, "host": peer.host, "port": peer.port,
        "retrieve": peer.retrieve, "move_port": peer.move_port, "cohorts": list(peer.cohorts),
        "max_studies": peer.max_studies, "max_instances": peer.max_instances,
        "created_at": peer.created_at.replace(tzinfo=peer.created_at.tzinfo or UTC).isoformat(),
    }  # fmt: skip


def _address(peer: PacsPeer) -> dicom_peer.Peer:
    settings = get_settings()
    return dicom_peer.Peer(
        peer.name, peer.ae_title, peer.host, peer.port, settings.pacs_calling_ae_title, settings.pacs_timeout_s
    )


# -- configuration (platform admins) ----------------------------------------------------------------------------
def list_peers() -> list[dict[str, Any]]:
    with session_scope() as session:
        return [_json(peer) for peer in session.scalars(select(PacsPeer).order_by(PacsPeer.name))]


def create_peer(principal: Principal, spec: dict[str, Any]) -> dict[str, Any]:
    with session_scope() as session:
        cohort_ids: list[int] = []
        for reference in spec["cohorts"]:
            wanted = row_id(reference)
            cohort = session.scalar(
                select(Cohort).where(Cohort.id == wanted if wanted is not None else Cohort.name == reference)
            )
            if cohort is None:
                raise InvalidInput(f"cohorts: no cohort {excerpt(reference)}")
            cohort_ids.append(cohort.id)
        if session.scalar(select(PacsPeer).where(PacsPeer.name == spec["name"])) is not None:
            raise Conflict(f"a PACS peer named {spec['name']} exists already")
        peer = PacsPeer(**{**spec, "cohorts": sorted(set(cohort_ids))}, created_by=principal.username)
        session.add(peer)
        session.flush()
        audit.record(session, "pacs.peer.created", target=f"pacs {peer.name}", params={"cohorts": peer.cohorts})
        return _json(peer)


def delete_peer(name: str) -> None:
    with session_scope() as session:
        peer = session.scalar(select(PacsPeer).where(PacsPeer.name == name))
        if peer is None:
            raise NotFound(f"no PACS peer {excerpt(name)}")
        session.delete(peer)
        audit.record(session, "pacs.peer.deleted", target=f"pacs {name}")


def _peer(name: str) -> PacsPeer:
    with session_scope() as session:
        peer = session.scalar(select(PacsPeer).where(PacsPeer.name == name))
        if peer is None:
            raise NotFound(f"no PACS peer {excerpt(name)}")
        session.expunge(peer)
        return peer


def echo(name: str) -> dict[str, Any]:
    peer = _peer(name)
    return {"peer": peer.name, "status": "success", "round_trip_ms": round(dicom_peer.echo(_address(peer)), 1)}


# -- use (cohort admins of an allowed cohort) -------------------------------------------------------------------
def _usable_peer(principal: Principal, name: str) -> PacsPeer:
    """The peer if one of the caller's administered cohorts may use it (platform admins: any); otherwise it is
    unknown to the caller."""
    try:
        peer = _peer(name)
    except NotFound:
        raise NotFound(f"no PACS peer {excerpt(name)} for your cohorts") from None
    if principal.platform_admin or any(principal.administers(cohort_id) for cohort_id in peer.cohorts):
        return peer
    raise NotFound(f"no PACS peer {excerpt(name)} for your cohorts")


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    return "\\".join(str(item) for item in value) if isinstance(value, MultiValue) else str(value)


def _count(ds: Dataset, keyword: str) -> int | None:
    value = ds.get(keyword)
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _study_row(ds: Dataset) -> dict[str, Any]:
    return {
        "study_uid": _text(ds, "StudyInstanceUID"), "patient_id": _text(ds, "PatientID"),
        "accession_number": _text(ds, "AccessionNumber"), "study_date": _text(ds, "StudyDate"),
        "study_description": _text(ds, "StudyDescription"), "modalities": _text(ds, "ModalitiesInStudy"),
        "series": _count(ds, "NumberOfStudyRelatedSeries"),
        "instances": _count(ds, "NumberOfStudyRelatedInstances"),
    }  # fmt: skip


def _series_row(ds: Dataset) -> dict[str, Any]:
    return {
        "study_uid": _text(ds, "StudyInstanceUID"), "series_uid": _text(ds, "SeriesInstanceUID"),
        "modality": _text(ds, "Modality"), "series_number": _text(ds, "SeriesNumber"),
        "series_description": _text(ds, "SeriesDescription"), "series_date": _text(ds, "SeriesDate"),
        "instances": _count(ds, "NumberOfSeriesRelatedInstances"),
    }  # fmt: skip


def query(principal: Principal, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Study-level matches, or with ``study_uid`` that study's series. Answered to the caller only, never stored."""
    peer = _usable_peer(principal, name)
    address = _address(peer)
    if spec.get("study_uid"):
        [matches] = dicom_peer.find(address, [dicom_peer.series_identifier(study_uid=spec["study_uid"])])
        series = [_series_row(ds) for ds in matches]
        _journal_query(peer.name, "SERIES", len(series))
        return {"level": "SERIES", "studies": [], "series": series}
    identifier = dicom_peer.study_identifier(
        spec.get("patient_id"), spec.get("accession_number"), spec.get("study_date_from"),
        spec.get("study_date_to"), spec.get("modality"),
    )  # fmt: skip
    [matches] = dicom_peer.find(address, [identifier])
    studies = [_study_row(ds) for ds in matches]
    _journal_query(peer.name, "STUDY", len(studies))
    return {"level": "STUDY", "studies": studies, "series": []}


def _journal_query(peer: str, level: str, matches: int) -> None:
    with session_scope() as session:
        audit.record(session, "pacs.query.done", target=f"pacs {peer}", params={"level": level, "matches": matches})


def retrieve(principal: Principal, name: str, cohort: str, series_uids: list[str], pseudonym: str | None) -> int:
    """Start the import job that C-GETs the series; its id. Checked first: the cohort (the caller administers it),
    the peer (allowed for it), each series (the peer has it) and the caps."""
    target = imports.administered_cohort(principal, cohort)
    peer = _usable_peer(principal, name)
    if target.id not in peer.cohorts:
        raise NotFound(f"no PACS peer {excerpt(name)} for cohort {target.name}")
    address = _address(peer)
    found = dicom_peer.find(address, [dicom_peer.series_identifier(series_uid=uid) for uid in series_uids])
    pairs: list[tuple[str, str]] = []
    for uid, matches in zip(series_uids, found, strict=True):
        if not matches:
            raise InvalidInput(f"series_uids: PACS peer {peer.name} has no series {excerpt(uid)}")
        pairs.append((_text(matches[0], "StudyInstanceUID"), uid))
    studies = len({study for study, _ in pairs})
    if studies > peer.max_studies:
        raise InvalidInput(f"series_uids: {studies} studies, more than the {peer.max_studies} one request may bring")
    try:
        counts = dicom_peer.find(
            address, [dicom_peer.image_identifier(study, series) for study, series in pairs], peer.max_instances
        )
    except dicom_peer.TooManyMatches:
        raise InvalidInput(
            f"series_uids: more than the {peer.max_instances} instances one request may bring from {peer.name}"
        ) from None
    instances = sum(len(matches) for matches in counts)

    def fetch() -> Iterable[UploadedFile]:
        if peer.retrieve == "move" and peer.move_port:
            return dicom_peer.move_series(address, pairs, (get_settings().pacs_move_address, peer.move_port))
        return dicom_peer.get_series(address, pairs)

    params = {"peer": peer.name, "retrieve": peer.retrieve, "series": len(pairs), "studies": studies}
    params["instances"] = instances
    return imports.start_retrieval(principal, target, instances, fetch, pseudonym, params)
