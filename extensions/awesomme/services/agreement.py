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
from awesomme.dicom.seg import TISSUE, segment_type
from awesomme.dicom.volumes import Grid
from awesomme.models import ScoreKind, Segmentation, SegmentationRole
from awesomme.services.score_types import category_index, score_type_for_cohort, score_type_json
from awesomme.services.scores import cohort_scores

__all__ = [
    "SCORE_COLUMNS",
    "SEGMENTATION_COLUMNS",
    "RaterKind",
    "author_of",
    "matched_segments",
    "rater_of",
    "score_rows",
    "scores_agreement",
    "segment_identity",
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


def segment_identity(segment: dict[str, Any]) -> tuple[str, ...]:
    """What a segment is, as two SEGs are matched on: its coded type where that names a structure (Neoplasm is
    Neoplasm whatever its label's spelling), else its label (case and outer spaces aside). A record kept before
    segments had their type stored gets the type its label is given."""
    label = str(segment.get("label", ""))
    stored = segment.get("type")
    if isinstance(stored, dict) and stored.get("value"):
        scheme, value = str(stored.get("scheme", "")), str(stored["value"])
    else:
        code = segment_type(label)[1]
        scheme, value = str(code.scheme_designator), str(code.value)
    if (scheme, value) == (str(TISSUE.scheme_designator), str(TISSUE.value)):
        return ("label", label.strip().casefold())
    return ("type", scheme, value)


def _type_meaning(segment: dict[str, Any]) -> str:
    stored = segment.get("type")
    if isinstance(stored, dict) and stored.get("meaning"):
        return str(stored["meaning"])
    return str(segment_type(str(segment.get("label", "")))[1].meaning)


def matched_segments(
    segments_a: list[dict[str, Any]], segments_b: list[dict[str, Any]]
) -> list[tuple[dict[str, Any] | None, dict[str, Any] | None]]:
    """Pairs of segments that are the same structure, one from each SEG (by ``segment_identity``; two segments of
    one identity in a SEG pair in their number order), then each SEG's segments that the other lacks."""
    by_identity_b: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for segment in sorted(segments_b, key=lambda s: int(s["number"])):
        by_identity_b.setdefault(segment_identity(segment), []).append(segment)
    pairs: list[tuple[dict[str, Any] | None, dict[str, Any] | None]] = []
    for segment in sorted(segments_a, key=lambda s: int(s["number"])):
        candidates = by_identity_b.get(segment_identity(segment))
        pairs.append((segment, candidates.pop(0) if candidates else None))
    pairs.extend((None, segment) for remaining in by_identity_b.values() for segment in remaining)
    return pairs


def segmentation_agreement(source: SeriesSegmentations) -> dict[str, Any]:
    """Each pair of raters' newest SEGs, segment by segment, matched by what each segment is (its coded type, or
    its label), not by its number: a SEG's segment numbers are its own."""
    newest: dict[tuple[str, str], Segmentation] = {}
    for record in source.records:
        newest[rater_of(record)] = record  # oldest first: a revision replaces its rater's earlier SEG
    spacing = tuple(reversed(source.grid.spacing))  # arrays are (slice, row, column)
    maps = {rater: source.label_map(record) for rater, record in newest.items()} if len(newest) > 1 else {}
    order = sorted(newest, key=lambda rater: (rater[1], rater[0]))
    nothing = np.zeros(source.grid.shape, dtype=bool)
    pairs = []
    for rater_a, rater_b in itertools.combinations(order, 2):
        seg_a, seg_b = newest[rater_a], newest[rater_b]
        (kind_a, author_a), (kind_b, author_b) = rater_a, rater_b
        map_a, map_b = maps[rater_a], maps[rater_b]
        for segment_a, segment_b in matched_segments(list(seg_a.segments or []), list(seg_b.segments or [])):
            number_a = int(segment_a["number"]) if segment_a else None
            number_b = int(segment_b["number"]) if segment_b else None
            mask_a = map_a == number_a if number_a is not None else nothing
            mask_b = map_b == number_b if number_b is not None else nothing
            metrics = mask_agreement(mask_a, mask_b, spacing)
            pairs.append(
                {
                    "author_a": author_a,
                    "author_b": author_b,
                    "kind_a": kind_a,
                    "kind_b": kind_b,
                    "seg_a": seg_a.seg_series_uid,
                    "seg_b": seg_b.seg_series_uid,
                    "segment_a": number_a,
                    "segment_b": number_b,
                    "label_a": str(segment_a.get("label", "")) if segment_a else "",
                    "label_b": str(segment_b.get("label", "")) if segment_b else "",
                    "segment_type": _type_meaning(segment_a or segment_b or {}),
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
    "segment_a",
    "segment_b",
    "label_a",
    "label_b",
    "segment_type",
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
