"""A hospital PACS as a DICOM peer (pynetdicom): C-ECHO, C-FIND (study, series and image level, Study Root) and
C-GET, whose C-STORE sub-operations arrive on our own association (no listening port opens on our side), or C-MOVE
to our own calling AE title, a storage SCP open only while the retrieval runs.

Nothing here sends a dataset to a peer: no C-STORE SCU, no C-MOVE to a third party (the destination is always us).
The query identifiers are built from a fixed set of keys (``study_identifier``, ``series_identifier``): a caller
chooses values, never keys.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom import AE, build_role, evt
from pynetdicom.association import Association

from awesomme.core.errors import AwesommeError, InvalidInput, excerpt
from awesomme.intake.archive import UploadedFile

__all__ = [
    "STORAGE_CLASSES",
    "Peer",
    "PeerUnavailable",
    "TooManyMatches",
    "echo",
    "find",
    "get_series",
    "image_identifier",
    "move_series",
    "series_identifier",
    "study_identifier",
]

# SOP classes by UID (pynetdicom's sop_class module builds its names at run time, where a type checker cannot see).
Verification = UID("1.2.840.10008.1.1")
StudyRootQueryRetrieveInformationModelFind = UID("1.2.840.10008.5.1.4.1.2.2.1")
StudyRootQueryRetrieveInformationModelGet = UID("1.2.840.10008.5.1.4.1.2.2.3")
StudyRootQueryRetrieveInformationModelMove = UID("1.2.840.10008.5.1.4.1.2.2.2")
# What a C-GET may bring: the image kinds the platform analyses (others are refused by the peer's sub-operations).
STORAGE_CLASSES = (
    UID("1.2.840.10008.5.1.4.1.1.2"),  # CT Image Storage
    UID("1.2.840.10008.5.1.4.1.1.2.1"),  # Enhanced CT Image Storage
    UID("1.2.840.10008.5.1.4.1.1.4"),  # MR Image Storage
    UID("1.2.840.10008.5.1.4.1.1.4.1"),  # Enhanced MR Image Storage
    UID("1.2.840.10008.5.1.4.1.1.128"),  # Positron Emission Tomography Image Storage
    UID("1.2.840.10008.5.1.4.1.1.1.1"),  # Digital X-Ray Image Storage - For Presentation
    UID("1.2.840.10008.5.1.4.1.1.6.1"),  # Ultrasound Image Storage
)
_PENDING = (0xFF00, 0xFF01)
_STUDY_RETURN_KEYS = (
    "StudyInstanceUID", "PatientID", "AccessionNumber", "StudyDate", "StudyDescription", "ModalitiesInStudy",
    "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
)  # fmt: skip
_SERIES_RETURN_KEYS = (
    "StudyInstanceUID", "SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription", "SeriesDate",
    "NumberOfSeriesRelatedInstances",
)  # fmt: skip


class PeerUnavailable(AwesommeError):
    """The peer refused the association, did not answer, or ended it before the work was done."""

    status_code = 502


class TooManyMatches(InvalidInput):
    """More matches than the caller allowed (a cap)."""


@dataclass(frozen=True)
class Peer:
    name: str
    ae_title: str
    host: str
    port: int
    calling_ae_title: str
    timeout_s: float


def _ae(peer: Peer) -> AE:
    ae = AE(ae_title=peer.calling_ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = peer.timeout_s
    ae.connection_timeout = peer.timeout_s
    return ae


def _associate(peer: Peer, ae: AE, **kwargs: Any) -> Association:
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title, **kwargs)
    if assoc.is_established:
        return assoc
    if assoc.is_rejected:
        why = "refused the association"
    elif _reachable(peer):  # a rejection whose connection closed before its answer was read reads as an abort
        why = "refused the association (it broke off: does it know our AE title and its own?)"
    else:
        why = "is not reachable (nothing answers at that address)"
    raise PeerUnavailable(f"PACS peer {peer.name} ({peer.ae_title}@{peer.host}:{peer.port}) {why}")


def _reachable(peer: Peer) -> bool:
    try:
        with socket.create_connection((peer.host, peer.port), timeout=min(peer.timeout_s, 5.0)):
            return True
    except OSError:
        return False


def echo(peer: Peer) -> float:
    """C-ECHO; its round trip in milliseconds."""
    ae = _ae(peer)
    ae.add_requested_context(Verification)
    start = time.perf_counter()
    assoc = _associate(peer, ae)
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    if not status or status.get("Status") != 0x0000:
        raise PeerUnavailable(f"PACS peer {peer.name} did not confirm the echo")
    return (time.perf_counter() - start) * 1000


def study_identifier(
    patient_id: str | None, accession_number: str | None, date_from: str | None, date_to: str | None,
    modality: str | None,
) -> Dataset:  # fmt: skip
    """A study-level C-FIND identifier: one patient or one accession, optional dates and modality; the rest are
    return keys."""
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    for keyword in _STUDY_RETURN_KEYS:
        setattr(ds, keyword, "")
    if patient_id:
        ds.PatientID = patient_id
    if accession_number:
        ds.AccessionNumber = accession_number
    if date_from or date_to:
        ds.StudyDate = f"{date_from or ''}-{date_to or ''}"
    if modality:
        ds.ModalitiesInStudy = modality
    return ds


def series_identifier(study_uid: str | None = None, series_uid: str | None = None) -> Dataset:
    """A series-level C-FIND identifier: the series of one study, or one series."""
    ds = Dataset()
    ds.QueryRetrieveLevel = "SERIES"
    for keyword in _SERIES_RETURN_KEYS:
        setattr(ds, keyword, "")
    if study_uid:
        ds.StudyInstanceUID = study_uid
    if series_uid:
        ds.SeriesInstanceUID = series_uid
    return ds


def image_identifier(study_uid: str, series_uid: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "IMAGE"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study_uid, series_uid, ""
    return ds


def find(peer: Peer, identifiers: list[Dataset], limit: int = 1000) -> list[list[Dataset]]:
    """C-FIND each identifier on one association; the matches of each (at most ``limit`` in all)."""
    ae = _ae(peer)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = _associate(peer, ae)
    answers: list[list[Dataset]] = []
    total = 0
    try:
        for identifier in identifiers:
            matches: list[Dataset] = []
            for status, match in assoc.send_c_find(identifier, StudyRootQueryRetrieveInformationModelFind):
                code = status.get("Status") if status else None
                if code is None:
                    raise PeerUnavailable(f"PACS peer {peer.name} ended the association during a query")
                if code in _PENDING and match is not None:
                    total += 1
                    if total > limit:
                        raise TooManyMatches(f"PACS peer {peer.name} answered more than {limit} matches")
                    matches.append(match)
                elif code != 0x0000:
                    raise PeerUnavailable(f"PACS peer {peer.name} refused the query (status 0x{code:04X})")
            answers.append(matches)
    finally:
        if assoc.is_established:
            assoc.release()
    return answers


def get_series(peer: Peer, series: list[tuple[str, str]]) -> Iterator[UploadedFile]:
    """C-GET each (study UID, series UID); each instance as it arrives (its encoded file, named after its SOP
    Instance UID). Raises ``PeerUnavailable`` when the peer refuses, fails a sub-operation or goes away."""
    return _retrieve(peer, series, None)


def move_series(peer: Peer, series: list[tuple[str, str]], scp_address: tuple[str, int]) -> Iterator[UploadedFile]:
    """C-MOVE each series to our calling AE title: a storage SCP on ``scp_address`` that accepts only this peer's AE
    title, open for this retrieval only. The peer must know our AE title at that address. As ``get_series``."""
    return _retrieve(peer, series, scp_address)


def _check_final(peer: Peer, series_uid: str, final: Dataset | None) -> None:
    code = final.get("Status") if final else None
    if code is None:
        raise PeerUnavailable(f"PACS peer {peer.name} went away during the retrieval")
    if code != 0x0000:
        failed = final.get("NumberOfFailedSuboperations", "?") if final else "?"
        raise PeerUnavailable(
            f"PACS peer {peer.name} did not send series {series_uid} whole (status 0x{code:04X}, {failed} failed)"
        )


def _series_key(study_uid: str, series_uid: str) -> Dataset:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "SERIES"
    identifier.StudyInstanceUID, identifier.SeriesInstanceUID = study_uid, series_uid
    return identifier


def _retrieve(peer: Peer, series: list[tuple[str, str]], scp_address: tuple[str, int] | None) -> Iterator[UploadedFile]:
    arrived: queue.Queue[UploadedFile | Exception | None] = queue.Queue()
    requested = {series_uid for _, series_uid in series}

    def on_store(event: evt.Event) -> int:  # a C-STORE sub-operation of our C-GET or C-MOVE
        if str(event.dataset.get("SeriesInstanceUID", "")) not in requested:
            return 0xC000  # not what we asked for (another sender on the C-MOVE port, a confused peer): refused
        sop = excerpt(str(event.request.AffectedSOPInstanceUID), 64)  # type: ignore[union-attr]
        arrived.put(UploadedFile(f"{peer.name}:{sop}", event.encoded_dataset(include_meta=True)))
        return 0x0000

    def by_get() -> None:
        ae = _ae(peer)
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
        for sop_class in STORAGE_CLASSES:
            ae.add_requested_context(sop_class)
        roles = [build_role(sop_class, scp_role=True) for sop_class in STORAGE_CLASSES]
        assoc = _associate(peer, ae, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, on_store)])
        try:
            for study_uid, series_uid in series:
                final: Dataset | None = None
                for status, _ in assoc.send_c_get(
                    _series_key(study_uid, series_uid), StudyRootQueryRetrieveInformationModelGet
                ):
                    final = status
                _check_final(peer, series_uid, final)
        finally:
            if assoc.is_established:
                assoc.release()

    def by_move(address: tuple[str, int]) -> None:
        scp = _ae(peer)
        for sop_class in STORAGE_CLASSES:
            scp.add_supported_context(sop_class)
        scp.require_calling_aet = [peer.ae_title]
        try:
            server = scp.start_server(address, block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
        except OSError as error:
            raise PeerUnavailable(
                f"cannot open the storage SCP for {peer.name} on port {address[1]}: {error}"
            ) from None
        assert server is not None  # block=False
        try:
            ae = _ae(peer)
            ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
            assoc = _associate(peer, ae)
            try:
                for study_uid, series_uid in series:
                    final: Dataset | None = None
                    for status, _ in assoc.send_c_move(
                        _series_key(study_uid, series_uid), peer.calling_ae_title,
                        StudyRootQueryRetrieveInformationModelMove,
                    ):  # fmt: skip
                        final = status
                    _check_final(peer, series_uid, final)
            finally:
                if assoc.is_established:
                    assoc.release()
        finally:
            server.shutdown()

    def run() -> None:
        try:
            by_get() if scp_address is None else by_move(scp_address)
        except Exception as error:  # the consumer raises it: the job ends failed, nothing stored
            arrived.put(error if isinstance(error, AwesommeError) else PeerUnavailable(f"retrieval failed: {error}"))
        finally:
            arrived.put(None)

    thread = threading.Thread(target=run, name=f"retrieve-{peer.name}", daemon=True)
    thread.start()
    while (item := arrived.get()) is not None:
        if isinstance(item, Exception):
            raise item
        yield item
