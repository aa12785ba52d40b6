"""``/api/pacs``: hospital PACS peers (platform admins configure them), and their query and retrieval (admins of
a cohort the peer is allowed for; to anyone else the peer does not exist).

A query answers the peer's matches to the caller only (nothing is stored). A retrieval answers 202 with an import
id (``GET /api/imports/{id}``): the series are fetched with C-GET, de-identified as they arrive and stored."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from awesomme.api import schemas
from awesomme.api.deps import CurrentPrincipal
from awesomme.services import pacs

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_AE_TITLE = r"^[ -\[\]-~]{0,15}[!-\[\]-~][ -\[\]-~]{0,15}$"  # 1-16 printable ASCII, no backslash, not all spaces
_HOST = r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?$|^\[?[0-9A-Fa-f:.]{2,45}\]?$"
_UID = r"^[0-9]+(\.[0-9]+)*$"
_KEY = r"^[^*?\\\x00-\x1f]{1,64}$"  # one patient or accession: no wildcard, no multiple values
_DATE = r"^[0-9]{8}$"
PeerName = Annotated[str, Path(pattern=_NAME, max_length=64)]


class PeerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME)
    ae_title: str = Field(pattern=_AE_TITLE, max_length=16)
    host: str = Field(pattern=_HOST, max_length=255)
    port: int = Field(ge=1, le=65535)
    retrieve: Literal["get", "move"] = "get"
    move_port: int | None = Field(
        default=None, ge=1, le=65535, description="move: the port of the storage SCP a retrieval opens while it runs"
    )
    cohorts: list[str] = Field(min_length=1, max_length=100, description="cohort ids or names allowed to use it")
    max_studies: int = Field(default=10, ge=1, le=1000)
    max_instances: int = Field(default=2000, ge=1, le=100000)

    @model_validator(mode="after")
    def _move_needs_a_port(self) -> PeerSpec:
        if (self.retrieve == "move") != (self.move_port is not None):
            raise ValueError("move_port: give it for retrieve=move, and only then")
        return self


class Peer(BaseModel):
    name: str
    ae_title: str
    host: str
    port: int
    retrieve: str
    move_port: int | None
    cohorts: list[int]
    max_studies: int
    max_instances: int
    created_at: str


class PeerDeleted(BaseModel):
    status: str
    name: str


class Echo(BaseModel):
    peer: str
    status: str
    round_trip_ms: float


class QuerySpec(BaseModel):
    """One patient or one accession (exactly one), optional dates and modality; or a study's series."""

    model_config = ConfigDict(extra="forbid")

    patient_id: str | None = Field(default=None, pattern=_KEY)
    accession_number: str | None = Field(default=None, pattern=r"^[^*?\\\x00-\x1f]{1,16}$")
    study_date_from: str | None = Field(default=None, pattern=_DATE)
    study_date_to: str | None = Field(default=None, pattern=_DATE)
    modality: str | None = Field(default=None, pattern=r"^[A-Z0-9]{1,16}$")
    study_uid: str | None = Field(default=None, pattern=_UID, max_length=64, description="that study's series")

    @model_validator(mode="after")
    def _one_key(self) -> QuerySpec:
        if self.study_uid is None and (self.patient_id is None) == (self.accession_number is None):
            raise ValueError("give exactly one of patient_id and accession_number (or study_uid for its series)")
        return self


class StudyMatch(BaseModel):
    study_uid: str
    patient_id: str
    accession_number: str
    study_date: str
    study_description: str
    modalities: str
    series: int | None
    instances: int | None


class SeriesMatch(BaseModel):
    study_uid: str
    series_uid: str
    modality: str
    series_number: str
    series_description: str
    series_date: str
    instances: int | None


class QueryAnswer(BaseModel):
    level: str  # STUDY | SERIES
    studies: list[StudyMatch]
    series: list[SeriesMatch]


class RetrieveSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cohort: str = Field(min_length=1, max_length=64, description="the target cohort's id or name")
    series_uids: list[Annotated[str, Field(pattern=_UID, max_length=64)]] = Field(min_length=1, max_length=500)
    pseudonym: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class RetrieveStarted(BaseModel):
    id: int


router = APIRouter(prefix="/pacs", tags=["pacs"], responses=schemas.errors(401, 403, 404, 409, 422, 502))


@router.get("/peers", summary="The PACS peers")
def list_peers(principal: CurrentPrincipal) -> list[Peer]:
    return [Peer.model_validate(peer) for peer in pacs.list_peers()]


@router.post("/peers", status_code=status.HTTP_201_CREATED, summary="Add a PACS peer")
def create_peer(spec: PeerSpec, principal: CurrentPrincipal) -> Peer:
    return Peer.model_validate(pacs.create_peer(principal, spec.model_dump()))


@router.delete("/peers/{name}", summary="Remove a PACS peer")
def delete_peer(name: PeerName, principal: CurrentPrincipal) -> PeerDeleted:
    pacs.delete_peer(name)
    return PeerDeleted(status="deleted", name=name)


@router.post("/peers/{name}/echo", summary="C-ECHO the peer (502 when it refuses or does not answer)")
def echo_peer(name: PeerName, principal: CurrentPrincipal) -> Echo:
    return Echo.model_validate(pacs.echo(name))


@router.post("/{name}/query", summary="C-FIND: one patient's or accession's studies, or a study's series")
def query(name: PeerName, spec: QuerySpec, principal: CurrentPrincipal) -> QueryAnswer:
    return QueryAnswer.model_validate(pacs.query(principal, name, spec.model_dump()))


@router.post(
    "/{name}/retrieve",
    status_code=status.HTTP_202_ACCEPTED,
    summary="C-GET series into a cohort you administer: an import job, de-identified on arrival",
)
def retrieve(name: PeerName, spec: RetrieveSpec, principal: CurrentPrincipal) -> RetrieveStarted:
    return RetrieveStarted(id=pacs.retrieve(principal, name, spec.cohort, spec.series_uids, spec.pseudonym))
