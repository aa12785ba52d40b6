"""The research export of a cohort: one CSV row per series and feature-set tag, for data mining elsewhere.

Each row holds the newest feature set of that tag (its identity, provenance and features, in the columns of
``GET /api/radiomics/{id}.csv``), the newest prediction made from it (else the series' newest), and a summary of the
scores given on the series and everything derived from it. A series with no feature set still has one row (empty
tag), so scores and predictions of every series of the cohort are exported.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from awesomme.core.csv_writer import write_csv
from awesomme.core.visibility import Principal, visibility_of_cohorts
from awesomme.models import Cohort, FeatureSet, Prediction, Score, ScoreKind, ScoreType
from awesomme.orthanc.client import IMAGE_MODALITIES, OrthancClient
from awesomme.services.cohorts import cohort_for_admin
from awesomme.services.scores import cohort_scores

__all__ = ["cohort_export_csv", "cohort_export_rows"]

SERIES_COLUMNS = ("cohort_id", "cohort", "study_uid", "series_uid", "modality")
FEATURE_SET_COLUMNS = ("feature_set_id", "seg_uid", "segment_number", "preset", "tag", "created_by", "created_at")
PREDICTION_COLUMNS = ("prediction.id", "prediction.model", "prediction.model_version", "prediction.label")


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping) and value:
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}", inner, out)
    elif isinstance(value, str | int | float | bool) or value is None:
        out[prefix] = value
    else:
        out[prefix] = json.dumps(value, default=str)


def _latest(items: Iterable[Any]) -> Any:
    ordered = sorted(items, key=lambda item: (item.created_at, item.id))
    return ordered[-1] if ordered else None


def _score_columns(scores: list[Score], types: dict[int, ScoreType]) -> dict[str, Any]:
    """Per score type: how many scores, the newest value, and the mean where values are numbers."""
    columns: dict[str, Any] = {}
    by_type: dict[int, list[Score]] = defaultdict(list)
    for score in scores:
        by_type[score.score_type_id].append(score)
    for type_id, group in sorted(by_type.items(), key=lambda item: types[item[0]].key):
        score_type = types[type_id]
        prefix = f"score.{score_type.key}"
        columns[f"{prefix}.n"] = len(group)
        if score_type.kind == ScoreKind.TEXT:
            continue  # free text stays in the platform: the export is for numbers and categories
        columns[f"{prefix}.latest"] = _latest(group).value
        values = [s.value for s in group]
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            columns[f"{prefix}.mean"] = statistics.fmean(values)
    return columns


def _prediction_columns(prediction: Prediction | None) -> dict[str, Any]:
    if prediction is None:
        return {}
    columns: dict[str, Any] = {
        "prediction.id": prediction.id,
        "prediction.model": prediction.model_name,
        "prediction.model_version": prediction.model_version,
        "prediction.label": prediction.label,
    }
    for label, probability in (prediction.probabilities or {}).items():
        columns[f"prediction.probability.{label}"] = probability
    return columns


def cohort_export_rows(session: Session, orthanc: OrthancClient, principal: Principal, cohort_id: int) -> list[dict]:
    """The rows of the export (admins of the cohort, platform admins)."""
    cohort: Cohort = cohort_for_admin(session, principal, cohort_id)
    visible = visibility_of_cohorts(session, {cohort_id})
    series = sorted(
        (str(hit.StudyInstanceUID), str(hit.SeriesInstanceUID), str(getattr(hit, "Modality", "")))
        for hit in orthanc.find_series(IMAGE_MODALITIES)
        if visible.sees_series(str(hit.StudyInstanceUID), str(hit.SeriesInstanceUID))
    )
    series_uids = [uid for _, uid, _ in series]
    feature_sets: dict[str, list[FeatureSet]] = defaultdict(list)
    for feature_set in session.scalars(select(FeatureSet).where(FeatureSet.series_uid.in_(series_uids))):
        feature_sets[feature_set.series_uid].append(feature_set)
    predictions: dict[str, list[Prediction]] = defaultdict(list)
    for prediction in session.scalars(select(Prediction).where(Prediction.series_uid.in_(series_uids))):
        predictions[str(prediction.series_uid)].append(prediction)
    scores = cohort_scores(session, cohort_id)
    types = {
        t.id: t for t in session.scalars(select(ScoreType).where(ScoreType.id.in_({s.score_type_id for s in scores})))
    }

    rows = []
    for study_uid, series_uid, modality in series:
        base = {"cohort_id": cohort.id, "cohort": cohort.name, "study_uid": study_uid, "series_uid": series_uid}
        base["modality"] = modality
        # Scores of the series and of what derives from it, and of its whole study.
        mine = [s for s in scores if s.series_uid == series_uid or (not s.series_uid and s.study_uid == study_uid)]
        score_columns = _score_columns(mine, types)
        by_tag: dict[str, FeatureSet] = {}
        for feature_set in sorted(feature_sets[series_uid], key=lambda f: (f.created_at, f.id)):
            by_tag[feature_set.tag] = feature_set  # the newest of each tag
        if not by_tag:
            rows.append({**base, "tag": "", **_prediction_columns(_latest(predictions[series_uid])), **score_columns})
            continue
        for tag, feature_set in sorted(by_tag.items()):
            from_this = [p for p in predictions[series_uid] if p.feature_set_id == feature_set.id]
            prediction = _latest(from_this) or _latest(predictions[series_uid])
            provenance: dict[str, Any] = {}
            _flatten("provenance", feature_set.provenance or {}, provenance)
            rows.append(
                {
                    **base,
                    "feature_set_id": feature_set.id,
                    "seg_uid": feature_set.seg_uid,
                    "segment_number": feature_set.segment_number,
                    "preset": feature_set.preset,
                    "tag": tag,
                    "created_by": feature_set.created_by,
                    "created_at": feature_set.created_at.isoformat(),
                    **_prediction_columns(prediction),
                    **score_columns,
                    **provenance,
                    **(feature_set.features or {}),
                }
            )
    return rows


def _header(rows: list[dict[str, Any]]) -> list[str]:
    """Fixed columns first, then predictions, scores, provenance and features, each group in a stable order."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    names = list(seen)
    fixed = [*SERIES_COLUMNS, *FEATURE_SET_COLUMNS, *PREDICTION_COLUMNS]
    probabilities = sorted(n for n in names if n.startswith("prediction.probability."))
    scores = sorted(n for n in names if n.startswith("score."))
    provenance = sorted(n for n in names if n.startswith("provenance."))
    grouped = {*fixed, *probabilities, *scores, *provenance, "tag"}
    features = [n for n in names if n not in grouped]  # PyRadiomics' names, in extraction order
    return [*fixed, *probabilities, *scores, *provenance, *features]


def cohort_export_csv(rows: list[dict[str, Any]]) -> str:
    header = _header(rows)
    return write_csv(header, ([row.get(name) for name in header] for row in rows))
