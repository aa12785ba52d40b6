"""Predictions of classification models: who may run which model on what, and the stored answers.

A prediction from a feature set belongs to the feature set's series' cohorts; one from an uploaded CSV belongs
to the cohort named with the upload. A caller sees a prediction only through one of their cohorts (platform
admins see all); another cohort's prediction does not exist for them (404). A model runs, for anyone but a
platform admin, only where it is bound to a cohort of the caller holding the data.
"""

from __future__ import annotations

import hashlib
import platform
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from awesomme import __version__
from awesomme.analysis.classification import LoadedClassifier, MissingFeatures, input_schema, predict
from awesomme.analysis.radiomics_csv import MAX_CSV_BYTES, read_feature_csv
from awesomme.core.db import row_id
from awesomme.core.errors import Forbidden, InvalidInput, NotFound
from awesomme.core.provenance import installed_versions
from awesomme.core.visibility import Principal, Visibility, cohorts_of_series
from awesomme.inference.registry import get_registry
from awesomme.models import Cohort, FeatureSet, Prediction
from awesomme.services.cohorts import bound_cohorts

__all__ = [
    "CSV_MAX_BYTES",
    "cohorts_of_prediction",
    "describe_models",
    "list_predictions",
    "predict_from_csv",
    "predict_from_feature_set",
    "prediction_as_json",
    "visible_prediction",
]

CSV_MAX_BYTES = MAX_CSV_BYTES
LIBRARIES = ("scikit-learn", "skrebate", "skops", "numpy", "scipy")


def _classifier(name: str) -> LoadedClassifier:
    model = get_registry().classifiers.get(name)
    if model is None:
        raise NotFound(f"no classification model {name}")
    return model


def describe_models(session: Session, principal: Principal) -> list[dict[str, Any]]:
    """The classification models the caller may run: platform admins all, others those bound to their cohorts."""
    listed = []
    for model in get_registry().classifiers.values():
        config = model.config
        if not principal.platform_admin and not bound_cohorts(session, config) & set(principal.roles):
            continue
        listed.append(
            {
                "name": config.name,
                "version": config.version,
                "labels": list(config.labels),
                "input_schema": input_schema(config),
                "preset": config.input.preset,
                "demo": config.demo,
                "notice": config.notice,
                "intended_use": config.intended_use,
                "validation": config.validation,
            }
        )
    return sorted(listed, key=lambda item: item["name"])


def _provenance(model: LoadedClassifier, principal: Principal, source: dict[str, Any]) -> dict[str, Any]:
    config = model.config
    return {
        "model": config.name,
        "model_version": config.version,
        "artefact_sha256": config.artefact.sha256,
        "preset": config.input.preset,
        "n_features": len(config.input.features),
        "demo": config.demo,
        "notice": config.notice,
        "input": source,
        "versions": installed_versions(LIBRARIES),
        "platform_version": __version__,
        "python": platform.python_version(),
        "user": principal.username,
        "time": datetime.now(UTC).isoformat(),
    }


def _vector_sha256(features: dict[str, Any], names: list[str]) -> str:
    """What identifies the exact input values the model read (in its feature order)."""
    text = "\n".join(f"{name}={float(features[name])!r}" for name in names)
    return hashlib.sha256(text.encode()).hexdigest()


def _run(model: LoadedClassifier, features: dict[str, Any], what: str) -> tuple[str, dict[str, float], str]:
    try:
        result = predict(model, features)
    except MissingFeatures as error:
        raise InvalidInput(f"{what}: {error}") from None
    return result.label, result.probabilities, _vector_sha256(features, model.config.input.features)


def predict_from_feature_set(
    session: Session, principal: Principal, visibility: Visibility, model_name: str, feature_set_id: int
) -> Prediction:
    model = _classifier(model_name)
    config = model.config
    feature_set = session.get(FeatureSet, feature_set_id)
    if feature_set is None or not visibility.sees_series(feature_set.study_uid, feature_set.series_uid):
        raise NotFound(f"no feature set {feature_set_id} in your cohorts")
    cohorts = cohorts_of_series(session, feature_set.study_uid, feature_set.series_uid)
    if not principal.platform_admin and not bound_cohorts(session, config) & cohorts & set(principal.roles):
        raise Forbidden(
            f"model {config.name} is not bound to any of your cohorts holding series {feature_set.series_uid}"
        )
    preset_name = feature_set.preset.split("@", 1)[0]
    if preset_name != config.input.preset:
        raise InvalidInput(
            f"feature set {feature_set_id} was extracted with preset {feature_set.preset}; "
            f"model {config.name} reads preset {config.input.preset}"
        )
    label, probabilities, vector_sha256 = _run(model, feature_set.features, f"feature set {feature_set_id}")
    source = {
        "kind": "feature_set",
        "feature_set_id": feature_set.id,
        "feature_set_preset": feature_set.preset,
        "feature_set_tag": feature_set.tag,
        "study_uid": feature_set.study_uid,
        "series_uid": feature_set.series_uid,
        "seg_uid": feature_set.seg_uid,
        "segment_number": feature_set.segment_number,
        "features_sha256": vector_sha256,
    }
    origin = {
        "study_uid": feature_set.study_uid,
        "series_uid": feature_set.series_uid,
        "feature_set_id": feature_set.id,
    }
    return _store(session, principal, model, label, probabilities, source, **origin)


def _cohort_for_upload(session: Session, principal: Principal, reference: str) -> Cohort:
    """The cohort named (by id or name) with an upload: one the caller is in (others do not exist for them)."""
    reference = reference.strip()
    cohort_id = row_id(reference)
    query = select(Cohort).where(Cohort.id == cohort_id if cohort_id is not None else Cohort.name == reference[:64])
    cohort = session.scalar(query) if reference else None
    if cohort is None or principal.role_in(cohort.id) is None:
        raise NotFound(f"no cohort {reference!r} of yours")
    return cohort


def predict_from_csv(
    session: Session, principal: Principal, model_name: str, cohort_reference: str, content: bytes, filename: str
) -> Prediction:
    model = _classifier(model_name)
    config = model.config
    if not config.input.csv_upload:
        raise InvalidInput(f"model {config.name} takes feature sets only, not uploaded CSVs")
    cohort = _cohort_for_upload(session, principal, cohort_reference)
    if not principal.platform_admin and cohort.id not in bound_cohorts(session, config):
        raise Forbidden(f"model {config.name} is not bound to cohort {cohort.name}")
    row = read_feature_csv(content)
    declared_preset = row.fields.get("preset", "").split("@", 1)[0]
    if declared_preset and declared_preset != config.input.preset:
        raise InvalidInput(
            f"the CSV's features come from preset {row.fields['preset']}; "
            f"model {config.name} reads preset {config.input.preset}"
        )
    label, probabilities, vector_sha256 = _run(model, row.features, "the CSV")
    source = {
        "kind": "csv",
        "filename": filename[:200],
        "csv_sha256": hashlib.sha256(content).hexdigest(),
        "features_sha256": vector_sha256,
        "cohort": cohort.name,
        # What the CSV says about itself (not checked against the archive: the upload is the caller's word).
        "declared": {key: value[:200] for key, value in row.fields.items()},
    }
    return _store(session, principal, model, label, probabilities, source, cohort_id=cohort.id)


def _store(
    session: Session,
    principal: Principal,
    model: LoadedClassifier,
    label: str,
    probabilities: dict[str, float],
    source: dict[str, Any],
    **origin: Any,
) -> Prediction:
    """The prediction with its provenance; ``origin``: its series and feature set, or the cohort of an upload."""
    config = model.config
    prediction = Prediction(
        **origin,
        model_name=config.name,
        model_version=config.version,
        label=label,
        probabilities=probabilities,
        provenance=_provenance(model, principal, source),
        created_by=principal.username,
    )
    session.add(prediction)
    session.flush()
    return prediction


def cohorts_of_prediction(session: Session, prediction: Prediction) -> set[int]:
    """The cohorts a prediction belongs to: the named one of an upload, else its series' cohorts."""
    if prediction.cohort_id is not None:
        return {prediction.cohort_id}
    return cohorts_of_series(session, prediction.study_uid or "", prediction.series_uid or "")


def _sees(prediction: Prediction, principal: Principal, visibility: Visibility) -> bool:
    if prediction.cohort_id is not None:
        return principal.role_in(prediction.cohort_id) is not None
    return visibility.sees_series(prediction.study_uid or "", prediction.series_uid or "")


def visible_prediction(
    session: Session, principal: Principal, visibility: Visibility, prediction_id: int
) -> Prediction:
    prediction = session.get(Prediction, prediction_id)
    if prediction is None or not _sees(prediction, principal, visibility):
        raise NotFound(f"no prediction {prediction_id} in your cohorts")
    return prediction


def list_predictions(session: Session, visibility: Visibility, series_uid: str) -> list[Prediction]:
    """The predictions of a series the caller sees (checked by the route's access rule), newest first."""
    query = select(Prediction).where(Prediction.series_uid == series_uid).order_by(Prediction.id.desc())
    return [p for p in session.scalars(query) if visibility.sees_series(p.study_uid or "", p.series_uid or "")]


def prediction_as_json(prediction: Prediction) -> dict[str, Any]:
    return {
        "id": prediction.id,
        "label": prediction.label,
        "probabilities": prediction.probabilities,
        "model": prediction.model_name,
        "model_version": prediction.model_version,
        "study_uid": prediction.study_uid,
        "series_uid": prediction.series_uid,
        "feature_set_id": prediction.feature_set_id,
        "cohort_id": prediction.cohort_id,
        "created_by": prediction.created_by,
        "created_at": prediction.created_at.isoformat(),
        "notice": prediction.provenance.get("notice", ""),
        "provenance": prediction.provenance,
    }
