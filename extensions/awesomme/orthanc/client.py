"""One pooled connection to Orthanc for both DICOMweb (dicomweb-client) and Orthanc's REST API."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import requests
from dicomweb_client.api import DICOMwebClient
from dicomweb_client.session_utils import create_session_from_user_pass
from pydicom import Dataset
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from awesomme.core.config import Settings, get_settings
from awesomme.core.errors import Conflict, InvalidInput, NotFound, OrthancUnavailable

__all__ = [
    "IMAGE_MODALITIES",
    "KEEPALIVE_EXPIRY_S",
    "OrthancClient",
    "SeriesState",
    "counting_calls",
    "get_client",
    "path_shape",
]

IMAGE_MODALITIES = ("CT", "MR")
# WADO-RS retrievals ask for the instances in the transfer syntax they were stored in.
AS_STORED = (("application/dicom", "*"),)
# Orthanc 1.10 closes a kept-alive connection after about a second idle (configurable only from 1.11.3), so a
# request sent on a pooled connection at that moment meets a closed socket. Pools that can expire connections drop
# them before Orthanc does; every pool sends such a request once more on a new connection. Resending is safe: all
# we ask Orthanc is idempotent (reads, lookups, deletes, STOW: a stored instance is never overwritten).
KEEPALIVE_EXPIRY_S = 0.5
RESEND_ON_CLOSED_CONNECTION = Retry(total=1, connect=1, read=1, status=0, redirect=0, other=0, allowed_methods=None)
# The calls made to Orthanc for the request being served ("GET /series", ...), when one is counting them.
_calls: ContextVar[list[str] | None] = ContextVar("awesomme_orthanc_calls", default=None)


@contextmanager
def counting_calls() -> Iterator[list[str]]:
    """Note every HTTP call made to Orthanc by the block (and the threads it hands its context to)."""
    calls: list[str] = []
    marker = _calls.set(calls)
    try:
        yield calls
    finally:
        _calls.reset(marker)


def _note_call(reply: requests.Response, *args: Any, **kwargs: Any) -> None:
    calls = _calls.get()
    if calls is not None:
        calls.append(f"{reply.request.method} {path_shape(urlsplit(reply.request.url or '').path)}")


def path_shape(path: str) -> str:
    """``path`` with its identifiers (UIDs, Orthanc ids: any part holding a digit) as "*", for logs."""
    return "/".join("*" if any(char.isdigit() for char in part) else part for part in path.split("/"))


@dataclass(frozen=True)
class SeriesState:
    """What Orthanc knows of one series; ``version`` changes whenever its content does."""

    orthanc_id: str
    series_uid: str
    study_uid: str
    modality: str
    instance_count: int
    last_update: str

    @property
    def version(self) -> str:
        return f"{self.last_update}-{self.instance_count}"


class OrthancClient:
    def __init__(self, settings: Settings) -> None:
        self.base_url = settings.orthanc_url.rstrip("/")
        self.timeout = settings.orthanc_timeout_s
        self.session = create_session_from_user_pass(settings.orthanc_username, settings.orthanc_password)
        self.session.mount(
            "http://", HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=RESEND_ON_CLOSED_CONNECTION)
        )
        self.session.hooks["response"].append(_note_call)
        self.dicomweb_url = settings.dicomweb_url
        self.dicomweb = DICOMwebClient(url=settings.dicomweb_url, session=self.session)

    # -- REST -------------------------------------------------------------------------------------------------
    def _rest(self, method: str, path: str, absolute: bool = False, **kwargs: Any) -> requests.Response:
        url = path if absolute else self.base_url + path
        try:
            reply = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as error:
            raise OrthancUnavailable(f"Orthanc is not reachable: {error.__class__.__name__}") from error
        if reply.status_code >= 500:
            shown = "DICOMweb" if absolute else path  # never Orthanc's address in an answer
            raise OrthancUnavailable(f"Orthanc answered {reply.status_code} to {method} {shown}")
        return reply

    def system(self) -> dict[str, Any]:
        reply = self._rest("GET", "/system")
        reply.raise_for_status()
        return reply.json()

    def statistics(self) -> dict[str, Any]:
        return self._rest("GET", "/statistics").json()

    def lookup_all(self, uid: str, kind: str) -> list[str]:
        """Orthanc ids of every resource of ``kind`` (Study, Series, Instance) with this UID: one UID can name
        several when it was stored under several patients (studies) or studies (series)."""
        reply = self._rest("POST", "/tools/lookup", data=uid)
        return [str(hit["ID"]) for hit in (reply.json() if reply.ok else []) if hit.get("Type") == kind]

    def _lookup(self, uid: str, kind: str) -> str | None:
        """The one resource with this UID; a UID that names several is a conflict, never served half."""
        hits = self.lookup_all(uid, kind)
        if len(hits) > 1:
            where = "patients" if kind == "Study" else "studies or patients"
            raise Conflict(f"{kind.lower()} {uid} exists under several {where} in the DICOM store")
        return hits[0] if hits else None

    def find(self, level: str, uids: dict[str, list[str]]) -> list[dict[str, Any]]:
        """``/tools/find`` at ``level`` for any of the listed UIDs per attribute (expanded answers)."""
        query = {keyword: "\\".join(values) for keyword, values in uids.items()}
        reply = self._rest("POST", "/tools/find", json={"Level": level, "Query": query, "Expand": True})
        reply.raise_for_status()
        return list(reply.json())

    def resource(self, level: str, orthanc_id: str) -> dict[str, Any]:
        reply = self._rest("GET", f"/{level}/{orthanc_id}")
        reply.raise_for_status()
        return dict(reply.json())

    def instance_md5(self, orthanc_id: str) -> str:
        reply = self._rest("GET", f"/instances/{orthanc_id}/attachments/dicom/md5")
        reply.raise_for_status()
        return reply.text.strip()

    def instance_file(self, orthanc_id: str) -> bytes:
        reply = self._rest("GET", f"/instances/{orthanc_id}/file")
        reply.raise_for_status()
        return reply.content

    def delete_instance(self, orthanc_id: str) -> None:
        reply = self._rest("DELETE", f"/instances/{orthanc_id}")
        if reply.status_code != 404:
            reply.raise_for_status()

    def stow(self, body: bytes, content_type: str) -> tuple[int, dict[str, Any]]:
        """STOW-RS of a body we wrote; Orthanc's status and its JSON reply (empty when it sent none)."""
        headers = {"Content-Type": content_type, "Accept": "application/dicom+json"}
        reply = self._rest("POST", self.dicomweb_url + "/studies", data=body, headers=headers, absolute=True)
        try:
            answer = reply.json() if reply.content else {}
        except ValueError:
            answer = {}
        return reply.status_code, answer if isinstance(answer, dict) else {}

    def _lookup_series_id(self, series_uid: str) -> str:
        orthanc_id = self._lookup(series_uid, "Series")
        if orthanc_id is None:
            raise NotFound(f"no series with SeriesInstanceUID {series_uid}")
        return orthanc_id

    def studies_of_series(self, series_uid: str) -> list[str]:
        """The StudyInstanceUIDs a SeriesInstanceUID is stored under (several only where the DICOM model is broken:
        the same series UID sent under other studies or patients)."""
        studies = []
        for orthanc_id in self.lookup_all(series_uid, "Series"):
            parent = self._rest("GET", f"/series/{orthanc_id}").json()["ParentStudy"]
            studies.append(str(self._rest("GET", f"/studies/{parent}").json()["MainDicomTags"]["StudyInstanceUID"]))
        return sorted(set(studies))

    def ambiguous_series(self) -> dict[str, list[str]]:
        """Every SeriesInstanceUID stored under several studies, with those studies' UIDs (one listing of Orthanc's
        series and one of its studies)."""
        studies = {
            str(item["ID"]): str(item["MainDicomTags"].get("StudyInstanceUID", ""))
            for item in self._rest("GET", "/studies", params={"expand": ""}).json()
        }
        by_uid: dict[str, set[str]] = {}
        for item in self._rest("GET", "/series", params={"expand": ""}).json():
            uid = str(item["MainDicomTags"].get("SeriesInstanceUID", ""))
            by_uid.setdefault(uid, set()).add(studies.get(str(item["ParentStudy"]), ""))
        return {uid: sorted(found) for uid, found in sorted(by_uid.items()) if len(found) > 1}

    def study_exists(self, study_uid: str) -> bool:
        return self._lookup(study_uid, "Study") is not None

    def series_state(self, series_uid: str) -> SeriesState:
        orthanc_id = self._lookup_series_id(series_uid)
        series = self._rest("GET", f"/series/{orthanc_id}").json()
        study = self._rest("GET", f"/studies/{series['ParentStudy']}").json()
        return SeriesState(
            orthanc_id=orthanc_id,
            series_uid=series_uid,
            study_uid=study["MainDicomTags"]["StudyInstanceUID"],
            modality=series["MainDicomTags"].get("Modality", ""),
            instance_count=len(series["Instances"]),
            last_update=series.get("LastUpdate", ""),
        )

    def find_series(self, modalities: tuple[str, ...] = IMAGE_MODALITIES) -> list[Dataset]:
        """QIDO-RS series search, one query per modality (Orthanc 1.10 does not match ``CT\\MR``)."""
        found: list[Dataset] = []
        for modality in modalities:
            found += self._qido_series({"Modality": modality})
        return found

    def _qido_series(self, filters: dict[str, str]) -> list[Dataset]:
        try:
            hits = self.dicomweb.search_for_series(
                search_filters=filters,
                fields=["StudyInstanceUID", "SeriesDescription", "PatientID", "StudyDate", "Modality"],
            )
        except requests.RequestException as error:
            raise OrthancUnavailable(f"Orthanc QIDO-RS failed: {error}") from error
        return [Dataset.from_json(hit) for hit in hits]

    def delete_series(self, series_uid: str) -> None:
        orthanc_id = self._lookup_series_id(series_uid)
        self._rest("DELETE", f"/series/{orthanc_id}").raise_for_status()

    # -- DICOMweb ---------------------------------------------------------------------------------------------
    def retrieve_series(self, study_uid: str, series_uid: str) -> list[Dataset]:
        """The instances as stored (``transfer-syntax=*``): compressed pixel data is decoded here by pydicom's
        handlers (pylibjpeg: JPEG 2000, JPEG-LS, JPEG, RLE), never transcoded by Orthanc, whose DICOMweb plugin
        cannot transcode every syntax archives hold (JPEG 2000 among them)."""
        return self.dicomweb.retrieve_series(study_uid, series_uid, media_types=AS_STORED)

    def retrieve_instance(self, study_uid: str, series_uid: str, sop_instance_uid: str) -> Dataset:
        try:
            return self.dicomweb.retrieve_instance(study_uid, series_uid, sop_instance_uid, media_types=AS_STORED)
        except requests.HTTPError as error:
            if error.response is not None and error.response.status_code == 404:
                raise NotFound(f"no instance {sop_instance_uid[:80]} in the DICOM store") from None
            raise

    def retrieve_series_metadata(self, study_uid: str, series_uid: str) -> list[Dataset]:
        return [Dataset.from_json(item) for item in self.dicomweb.retrieve_series_metadata(study_uid, series_uid)]

    def store(self, datasets: list[Dataset]) -> None:
        """STOW-RS; a refusal of any instance is an error naming it (the reply lists failures, often empty)."""
        try:
            reply = self.dicomweb.store_instances(datasets)
        except requests.HTTPError as error:
            raise InvalidInput(f"Orthanc refused the instances: {error}") from error
        failed = getattr(reply, "FailedSOPSequence", None) or []
        if len(failed):
            uids = ", ".join(str(item.ReferencedSOPInstanceUID) for item in failed)
            raise InvalidInput(f"Orthanc refused instances {uids}")


@lru_cache(maxsize=1)
def get_client() -> OrthancClient:
    """The process's one pooled client (the datastore, the health check and the API share it)."""
    return OrthancClient(get_settings())
