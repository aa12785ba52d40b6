"""Radiomics feature sets: presets, extraction on a stored series and one segment of its SEG, listings, provenance.

A feature set belongs to its source series' cohorts (like the SEG it comes from): callers see it through a cohort
of theirs, others get 404. Presets are built in (YAML shipped with the code, version 1) or added by admins as new
versions, never edited in place. The extraction itself runs outside any DB transaction: it takes seconds.
"""

from __future__ import annotations

import math
import platform
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from awesomme import __version__
from awesomme.analysis import radiomics
from awesomme.analysis.radiomics_csv import write_feature_csv
from awesomme.core import audit
from awesomme.core.db import session_scope
from awesomme.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from awesomme.core.visibility import Principal, Visibility, cohorts_of_series
from awesomme.models import FeatureSet, RadiomicsPreset, Segmentation
from awesomme.orthanc.client import SeriesState
from awesomme.orthanc.datastore import OrthancDatastore
from awesomme.services.cohorts import cohort_for_admin

__all__ = [
    "CUSTOM",
    "ExtractionRequest",
    "FeatureValues",
    "Preset",
    "compute",
    "create_preset",
    "extract",
    "feature_set_csv",
    "feature_set_json",
    "feature_sets_of",
    "list_presets",
    "resolve_preset",
    "store_feature_set",
    "visible_feature_set",
]

CUSTOM = "custom"  # the preset of a feature set extracted with parameters given in the request
PRESET_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
PRESET_REF = re.compile(r"^(?P<name>[a-z0-9][a-z0-9._-]{0,63})(@(?P<version>[0-9]{1,9}))?$")
BUILTIN_VERSION = 1


@dataclass(frozen=True)
class Preset:
    name: str
    version: int
    parameters: dict[str, Any]
    cohort_id: int | None = None
    created_by: str = "platform"
    created_at: datetime | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def builtin(self) -> bool:
        return self.created_at is None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "builtin": self.builtin,
            "cohort_id": self.cohort_id,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "parameters": self.parameters,
        }


def _builtins() -> list[Preset]:
    return [Preset(name, BUILTIN_VERSION, radiomics.builtin_preset(name)) for name in radiomics.BUILTIN_PRESETS]


def _stored(row: RadiomicsPreset) -> Preset:
    return Preset(row.name, row.version, dict(row.parameters), row.cohort_id, row.created_by, row.created_at)


def _usable_by(principal: Principal, preset: Preset) -> bool:
    return preset.cohort_id is None or principal.role_in(preset.cohort_id) is not None


def list_presets(session: Session, principal: Principal) -> list[Preset]:
    """Built-ins, platform-wide presets and those of the caller's cohorts, every version, by name then version."""
    rows = [_stored(row) for row in session.scalars(select(RadiomicsPreset))]
    visible = [preset for preset in [*_builtins(), *rows] if _usable_by(principal, preset)]
    return sorted(visible, key=lambda preset: (preset.name, preset.version))


def resolve_preset(session: Session, principal: Principal, ref: str) -> Preset:
    """``name@version``, or ``name`` for its newest version the caller may use."""
    match = PRESET_REF.match(ref)
    if match is None:
        raise InvalidInput(f"preset {ref[:80]!r}: expected <name> or <name>@<version>")
    candidates = [preset for preset in list_presets(session, principal) if preset.name == match["name"]]
    if match["version"] is not None:
        candidates = [preset for preset in candidates if preset.version == int(match["version"])]
    if not candidates:
        raise NotFound(f"no radiomics preset {ref}")
    return candidates[-1]


def create_preset(
    session: Session, principal: Principal, name: str, parameters: dict[str, Any], cohort_id: int | None
) -> Preset:
    """A new version of ``name`` (version 1 if new) for a cohort (its admins) or the whole platform (platform admins).

    A name keeps the scope of its first version, so one cohort never adds versions to another's preset.
    """
    if not PRESET_NAME.match(name):
        raise InvalidInput("a preset name has 1 to 64 lower-case letters, digits, '.', '-' or '_'")
    if cohort_id is None:
        if not principal.platform_admin:
            raise Forbidden("platform-wide presets are for platform admins: name the cohort the preset is for")
    else:
        cohort_for_admin(session, principal, cohort_id)
    _validated(parameters)
    existing = list(session.scalars(select(RadiomicsPreset).where(RadiomicsPreset.name == name)))
    scopes = {row.cohort_id for row in existing} | ({None} if name in radiomics.BUILTIN_PRESETS else set())
    if scopes and scopes != {cohort_id}:
        raise Conflict(f"the preset name {name} is taken: choose another name")
    builtin = [BUILTIN_VERSION] if name in radiomics.BUILTIN_PRESETS else []
    latest = max([row.version for row in existing] + builtin, default=0)
    row = RadiomicsPreset(
        name=name,
        version=latest + 1,
        parameters=parameters,
        cohort_id=cohort_id,
        created_by=principal.username,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"another version of {name} was created at the same time: try again") from None
    return _stored(row)


def _validated(parameters: Any) -> dict[str, Any]:
    try:
        return radiomics.validate_parameters(parameters)
    except radiomics.InvalidParameters as error:
        raise InvalidInput(f"invalid PyRadiomics parameters: {error}") from None


# -- extraction -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExtractionRequest:
    series_uid: str
    seg_uid: str
    segment_number: int = 1
    preset: str | None = None
    parameters: dict[str, Any] | None = None
    tag: str = ""


@dataclass(frozen=True)
class _Inputs:
    study_uid: str
    series_version: str
    seg: Segmentation
    preset: str  # the reference stored with the feature set
    parameters: dict[str, Any]


def _inputs(
    datastore: OrthancDatastore, principal: Principal, request: ExtractionRequest
) -> tuple[_Inputs, SeriesState]:
    if (request.preset is None) == (request.parameters is None):
        raise InvalidInput("give either a preset or PyRadiomics parameters, not both and not neither")
    state = datastore.image_state(request.series_uid)  # 404: unknown, not the caller's, not a CT or MR image
    with session_scope() as session:
        if request.preset is not None:
            chosen = resolve_preset(session, principal, request.preset)
            preset, parameters = chosen.ref, chosen.parameters
        else:
            preset, parameters = CUSTOM, _validated(request.parameters)
        seg = session.get(Segmentation, request.seg_uid)
        if seg is None or seg.source_series_uid != request.series_uid:
            raise NotFound(f"no SEG {request.seg_uid} of series {request.series_uid}")
    return _Inputs(state.study_uid, state.version, seg, preset, parameters), state


def extract(datastore: OrthancDatastore, principal: Principal, request: ExtractionRequest) -> FeatureSet:
    """Fetch the series and the segment (both through the cache), extract, store the feature set with provenance."""
    values = compute(datastore, principal, request)
    with session_scope() as session:
        return store_feature_set(session, values)


@dataclass(frozen=True)
class FeatureValues:
    """An extraction's result before it is stored: plain values (a batch's worker hands them to the server)."""

    study_uid: str
    series_uid: str
    seg_uid: str
    segment_number: int
    preset: str
    tag: str
    features: dict[str, float | None]
    provenance: dict[str, Any]
    created_by: str


def compute(datastore: OrthancDatastore, principal: Principal, request: ExtractionRequest) -> FeatureValues:
    """The extraction without storing it: series and segment through the cache, the features, their provenance."""
    inputs, state = _inputs(datastore, principal, request)
    volume = datastore.load_volume(state)
    label_map = datastore.label_map(inputs.seg)
    if label_map.shape != volume.array.shape:
        raise InvalidInput(f"SEG {request.seg_uid} does not lie on the grid of series {request.series_uid}")
    mask_array = (label_map == request.segment_number).astype(np.uint8)
    if not mask_array.any():
        present = sorted(int(v) for v in np.unique(label_map) if v)
        raise InvalidInput(f"segment {request.segment_number} is not in SEG {request.seg_uid}; it has {present}")
    image = radiomics.image_from_array(volume.array, volume.affine)
    mask = radiomics.image_from_array(mask_array, volume.affine)
    try:  # the bounds that depend on the data (gray levels a binWidth makes, the resampled region's size)
        radiomics.check_work(volume.array, mask_array, image.GetSpacing(), inputs.parameters)
    except radiomics.InvalidParameters as error:
        raise InvalidInput(f"invalid PyRadiomics parameters: {error}") from None
    started = time.perf_counter()
    try:
        values, effective = radiomics.extract_with_parameters(image, mask, inputs.parameters)
    except (ValueError, RuntimeError) as error:  # PyRadiomics refuses masks it cannot work on (too small, flat)
        raise InvalidInput(f"PyRadiomics cannot extract features here: {error}") from None
    elapsed = time.perf_counter() - started
    features = {name: (value if math.isfinite(value) else None) for name, value in values.items()}
    provenance = _provenance(inputs, request, image, mask, effective, principal, elapsed, len(features))
    return FeatureValues(
        study_uid=inputs.study_uid,
        series_uid=request.series_uid,
        seg_uid=request.seg_uid,
        segment_number=request.segment_number,
        preset=inputs.preset,
        tag=request.tag,
        features=features,
        provenance=provenance,
        created_by=principal.username,
    )


def store_feature_set(session: Session, values: FeatureValues, params: dict[str, Any] | None = None) -> FeatureSet:
    """Store an extraction's feature set and journal it, in the caller's transaction."""
    feature_set = FeatureSet(
        study_uid=values.study_uid,
        series_uid=values.series_uid,
        seg_uid=values.seg_uid,
        segment_number=values.segment_number,
        preset=values.preset,
        tag=values.tag,
        features=values.features,
        provenance=values.provenance,
        created_by=values.created_by,
        created_at=datetime.fromisoformat(values.provenance["time"]),
    )
    session.add(feature_set)
    session.flush()
    cohorts = sorted(cohorts_of_series(session, values.study_uid, values.series_uid))
    audit.record(
        session,
        "radiomics.extract",
        target=values.series_uid,
        cohort=" ".join(map(str, cohorts)),
        params={
            "feature_set": feature_set.id,
            "seg_uid": values.seg_uid,
            "segment_number": values.segment_number,
            "preset": values.preset,
            "tag": values.tag,
            "features": len(values.features),
            **(params or {}),
        },
    )
    return feature_set


def _provenance(
    inputs: _Inputs,
    request: ExtractionRequest,
    image: Any,
    mask: Any,
    effective: dict[str, Any],
    principal: Principal,
    elapsed_s: float,
    feature_count: int,
) -> dict[str, Any]:
    """What reproduces and identifies the extraction (in the spirit of the OSIRIS recommendations)."""
    segment = next((s for s in inputs.seg.segments if s.get("number") == request.segment_number), {})
    return {
        "study_uid": inputs.study_uid,
        "series_uid": request.series_uid,
        "series_version": inputs.series_version,
        "seg_uid": request.seg_uid,
        "segment_number": request.segment_number,
        "segment_label": str(segment.get("label", "")),
        "image": radiomics.image_identity(image),
        "mask": radiomics.image_identity(mask),
        "preset": inputs.preset,
        "parameters": effective,
        "libraries": radiomics.library_versions(),
        "python": platform.python_version(),
        "platform": {"name": "awesomme", "version": __version__},
        "user": principal.username,
        "time": datetime.now(UTC).isoformat(),
        "tag": request.tag,
        "feature_count": feature_count,
        "extraction_s": round(elapsed_s, 3),
    }


# -- reading ----------------------------------------------------------------------------------------------------
def visible_feature_set(session: Session, visibility: Visibility, feature_set_id: int) -> FeatureSet:
    feature_set = session.get(FeatureSet, feature_set_id)
    if feature_set is None or not visibility.sees_series(feature_set.study_uid, feature_set.series_uid):
        raise NotFound(f"no feature set {feature_set_id}")
    return feature_set


def feature_sets_of(session: Session, visibility: Visibility, series_uid: str) -> list[dict[str, Any]]:
    """The feature sets of a series (without their values), oldest first."""
    rows = session.scalars(
        select(FeatureSet).where(FeatureSet.series_uid == series_uid).order_by(FeatureSet.created_at, FeatureSet.id)
    )
    return [_summary(row) for row in rows if visibility.sees_series(row.study_uid, row.series_uid)]


def _summary(feature_set: FeatureSet) -> dict[str, Any]:
    return {
        "id": feature_set.id,
        "study_uid": feature_set.study_uid,
        "series_uid": feature_set.series_uid,
        "seg_uid": feature_set.seg_uid,
        "segment_number": feature_set.segment_number,
        "preset": feature_set.preset,
        "tag": feature_set.tag,
        "feature_count": len(feature_set.features),
        "created_by": feature_set.created_by,
        "created_at": feature_set.created_at.isoformat(),
    }


def feature_set_json(feature_set: FeatureSet) -> dict[str, Any]:
    return {**_summary(feature_set), "features": feature_set.features, "provenance": feature_set.provenance}


def feature_set_csv(feature_set: FeatureSet) -> str:
    identity = {**_summary(feature_set), "feature_set_id": feature_set.id}
    return write_feature_csv(identity, feature_set.provenance, feature_set.features)
