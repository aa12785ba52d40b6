"""Inter-expert agreement on what the platform holds: the SEGs of one series, the scores of one cohort."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from awesomme.analysis.agreement import mask_agreement, score_agreement
from awesomme.core.errors import InvalidInput, NotFound
from awesomme.core.visibility import Principal
from awesomme.dicom.volumes import Grid
from awesomme.models import ScoreKind, Segmentation, SegmentationRole
from awesomme.services.score_types import category_index, score_type_for_cohort, score_type_json
from awesomme.services.scores import cohort_scores

__all__ = [
    "SCORE_COLUMNS",
    "SEGMENTATION_COLUMNS",
    "RaterKind",
    "author_of",
    "rater_of",
    "score_rows",
    "scores_agreement",
    "segmentation_agreement",
    "segmentation_rows",
]


class RaterKind:
    """Who a SEG's rater is: an account of the platform, a reader an import declares, or a model."""

    ACCOUNT = "account"
    READER = "reader"
    MODEL = "model"


def rater_of(record: Segmentation) -> tuple[str, str]:
    """(kind, name) of who drew a SEG: the model of a prediction, the declared reader of an import, else the
    account that stored it. A reader and an account of the same name are two raters."""
    if record.role == SegmentationRole.PREDICTION:
        return RaterKind.MODEL, f"model:{record.model_name or record.seg_series_uid}"
    if record.reader:
        return RaterKind.READER, record.reader
    return RaterKind.ACCOUNT, record.created_by or record.author or f"unknown:{record.seg_series_uid}"


def author_of(record: Segmentation) -> str:
    """The rater's name as the answer shows it."""
    return rater_of(record)[1]


@dataclass(frozen=True)
class SeriesSegmentations:
    """What the datastore gives for one series: its SEG records (oldest first), its grid and a SEG decoder."""

    series_uid: str
    records: list[Segmentation]
    grid: Grid
    label_map: Callable[[Segmentation], np.ndarray]


def segmentation_agreement(source: SeriesSegmentations) -> dict[str, Any]:
    """Each pair of raters' newest SEGs, segment by segment (matched by segment number)."""
    newest: dict[tuple[str, str], Segmentation] = {}
    for record in source.records:
        newest[rater_of(record)] = record  # oldest first: a revision replaces its rater's earlier SEG
    spacing = tuple(reversed(source.grid.spacing))  # arrays are (slice, row, column)
    maps = {rater: source.label_map(record) for rater, record in newest.items()} if len(newest) > 1 else {}
    order = sorted(newest, key=lambda rater: (rater[1], rater[0]))
    pairs = []
    for rater_a, rater_b in itertools.combinations(order, 2):
        seg_a, seg_b = newest[rater_a], newest[rater_b]
        (kind_a, author_a), (kind_b, author_b) = rater_a, rater_b
        names_a = {int(s["number"]): str(s.get("label", "")) for s in seg_a.segments or []}
        names_b = {int(s["number"]): str(s.get("label", "")) for s in seg_b.segments or []}
        map_a, map_b = maps[rater_a], maps[rater_b]
        numbers = sorted((set(np.unique(map_a)) | set(np.unique(map_b))) - {0})
        for number in numbers:
            metrics = mask_agreement(map_a == number, map_b == number, spacing)
            pairs.append(
                {
                    "author_a": author_a,
                    "author_b": author_b,
                    "kind_a": kind_a,
                    "kind_b": kind_b,
                    "seg_a": seg_a.seg_series_uid,
                    "seg_b": seg_b.seg_series_uid,
                    "segment_number": int(number),
                    "label_a": names_a.get(int(number), ""),
                    "label_b": names_b.get(int(number), ""),
                    **metrics.as_json(),
                }
            )
    return {
        "series_uid": source.series_uid,
        "authors": [
            {
                "author": rater[1],
                "kind": rater[0],
                "seg_uid": newest[rater].seg_series_uid,
                "role": newest[rater].role,
                "model": newest[rater].model_name,
                "created_by": newest[rater].created_by,
            }
            for rater in order
        ],
        "spacing_mm": list(spacing),
        "pairs": pairs,
    }


SEGMENTATION_COLUMNS = (
    "series_uid",
    "author_a",
    "author_b",
    "kind_a",
    "kind_b",
    "seg_a",
    "seg_b",
    "segment_number",
    "label_a",
    "label_b",
    "dice",
    "hd95_mm",
    "volume_a_ml",
    "volume_b_ml",
    "volume_difference_ml",
    "volume_difference_percent",
)


def segmentation_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"series_uid": result["series_uid"], **pair} for pair in result["pairs"]]


def scores_agreement(session: Session, principal: Principal, cohort_id: int, reference: str) -> dict[str, Any]:
    """Agreement of the raters of one score type on one cohort's items (each rater's newest score per item)."""
    if principal.role_in(cohort_id) is None:
        raise NotFound(f"no cohort {cohort_id}")
    score_type = score_type_for_cohort(session, principal, reference, cohort_id)
    if score_type.kind == ScoreKind.TEXT:
        raise InvalidInput(f"{score_type.key} is free text: agreement needs categories or numbers")
    ratings: dict[str, dict[str, float]] = {}
    for score in cohort_scores(session, cohort_id, score_type.id):  # oldest first: the newest wins
        value = score.value if score_type.kind == ScoreKind.NUMERIC else category_index(score_type, score.value)
        ratings.setdefault(score.rater, {})[score.target_uid] = float(value)
    categorical = score_type.kind in (ScoreKind.ORDINAL, ScoreKind.NOMINAL)
    categories = list(range(len(score_type.labels or {}))) if categorical else None
    result = score_agreement(ratings, score_type.kind, categories)
    return {
        "cohort_id": cohort_id,
        "score_type": score_type_json(score_type),
        "raters": result.raters,
        "items": result.items,
        "items_scored_by_all": result.items_scored_by_all,
        "cohen_kappa": [
            {"rater_a": p.rater_a, "rater_b": p.rater_b, "items": p.items, "kappa": p.kappa} for p in result.cohen
        ],
        "cohen_weights": result.cohen_weights,
        "fleiss_kappa": result.fleiss_kappa,
        "krippendorff_alpha": result.krippendorff_alpha,
        "krippendorff_level": result.krippendorff_level,
    }


SCORE_COLUMNS = ("cohort_id", "score_type", "statistic", "rater_a", "rater_b", "items", "value", "detail")


def score_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per statistic: each pair's Cohen's kappa, then Fleiss' kappa and Krippendorff's alpha."""
    common = {"cohort_id": result["cohort_id"], "score_type": result["score_type"]["key"]}
    rows = [
        {
            **common,
            "statistic": "cohen_kappa",
            "rater_a": pair["rater_a"],
            "rater_b": pair["rater_b"],
            "items": pair["items"],
            "value": pair["kappa"],
            "detail": f"weights={result['cohen_weights'] or 'none'}",
        }
        for pair in result["cohen_kappa"]
    ]
    rows.append(
        {
            **common,
            "statistic": "fleiss_kappa",
            "items": result["items_scored_by_all"],
            "value": result["fleiss_kappa"],
            "detail": f"raters={len(result['raters'])}; items scored by all",
        }
    )
    rows.append(
        {
            **common,
            "statistic": "krippendorff_alpha",
            "items": result["items"],
            "value": result["krippendorff_alpha"],
            "detail": f"level={result['krippendorff_level']}; all items",
        }
    )
    return rows
