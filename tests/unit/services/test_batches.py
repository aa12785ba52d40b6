"""Cohort batches: output UIDs derived from batch and item, and the plan a dry run shows (matched, unmatched with
the reason, ambiguous with the candidates) on a cohort of mixed modalities with two candidate SEGs."""

from __future__ import annotations

from typing import Any

import pytest
from pydicom import Dataset

from awesomme.core.db import session_scope
from awesomme.core.errors import InvalidInput
from awesomme.models import Cohort, CohortItem, Segmentation
from awesomme.services import batches
from awesomme.services.batches import BatchRequest, SegChoice, Selection


def test_output_uids_are_the_same_for_every_run_of_an_item_and_differ_between_items() -> None:
    first = batches.output_uid(7, "1.2.3.4", "series")
    assert first == batches.output_uid(7, "1.2.3.4", "series")
    others = {
        batches.output_uid(8, "1.2.3.4", "series"),
        batches.output_uid(7, "1.2.3.5", "series"),
        batches.output_uid(7, "1.2.3.4", "instance"),
    }
    assert first not in others and len(others) == 3
    for uid in (first, *others):
        assert uid.startswith("2.25.") and len(uid) <= 64 and uid.replace(".", "").isdigit()


def test_a_selection_description_that_is_no_regular_expression_is_a_422_naming_it() -> None:
    with pytest.raises(InvalidInput, match=r"selection\.description"):
        Selection(description="T2 (unclosed").pattern()
    with pytest.raises(InvalidInput, match="at most"):
        Selection(description="a" * 201).pattern()


class _Qido:
    """What Orthanc's QIDO-RS answers for a study's series."""

    def __init__(self, series: list[dict[str, Any]]) -> None:
        self.series = series

    def search_for_series(
        self, study_uid: str, search_filters: dict[str, str] | None = None, fields: Any = None
    ) -> list[dict[str, Any]]:
        hits = [s for s in self.series if s["study"] == study_uid]
        if search_filters:
            hits = [s for s in hits if s["series"] == search_filters["SeriesInstanceUID"]]
        return [_dicom_json(hit) for hit in hits]


def _dicom_json(hit: dict[str, Any]) -> dict[str, Any]:
    dataset = Dataset()
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID = hit["study"], hit["series"]
    dataset.PatientID, dataset.Modality = hit["patient"], hit["modality"]
    dataset.SeriesNumber, dataset.SeriesDescription = hit["number"], hit["description"]
    return dict(dataset.to_json_dict())


class _Client:
    def __init__(self, series: list[dict[str, Any]]) -> None:
        self.dicomweb = _Qido(series)


SERIES = [
    {"study": "1.1", "series": "1.1.1", "patient": "P1", "modality": "MR", "number": 3, "description": "T2 TSE AX"},
    {"study": "1.1", "series": "1.1.2", "patient": "P1", "modality": "MR", "number": 4, "description": "T1 AX"},
    {"study": "1.1", "series": "1.1.9", "patient": "P1", "modality": "SEG", "number": 99, "description": "a SEG"},
    {"study": "2.1", "series": "2.1.1", "patient": "P2", "modality": "CT", "number": 2, "description": "Axial"},
    {"study": "3.1", "series": "3.1.1", "patient": "P3", "modality": "MR", "number": 3, "description": "T2 TSE AX"},
    {"study": "3.1", "series": "3.1.2", "patient": "P3", "modality": "MR", "number": 3, "description": "T2 other"},
]


def _cohort() -> int:
    with session_scope() as session:
        cohort = Cohort(name="batchers", description="", created_by="root")
        session.add(cohort)
        session.flush()
        session.add_all(
            [
                CohortItem(cohort_id=cohort.id, study_uid="1.1", series_uid="", added_by="root"),
                CohortItem(cohort_id=cohort.id, study_uid="2.1", series_uid="", added_by="root"),
                CohortItem(cohort_id=cohort.id, study_uid="3.1", series_uid="3.1.1", added_by="root"),  # one series
            ]
        )
        for seg_uid, source, description, tag in (
            ("9.1", "1.1.1", "tumour", "final"),
            ("9.2", "1.1.1", "tumour", "final"),  # two candidates: ambiguous
            ("9.3", "3.1.1", "tumour", "final"),
            ("9.4", "3.1.1", "tumour", "draft"),  # another tag: not a candidate
        ):
            session.add(
                Segmentation(
                    seg_series_uid=seg_uid,
                    seg_sop_uid=seg_uid + ".1",
                    source_series_uid=source,
                    study_uid=source.rsplit(".", 1)[0],
                    role="label",
                    tag=tag,
                    description=description,
                    created_by="reader",
                    segments=[],
                )
            )
        return cohort.id


def _plan(request: BatchRequest, spec: dict[str, Any]) -> dict[str, Any]:
    with session_scope() as session:
        return batches.plan(session, _Client(SERIES), request, spec).as_json()  # type: ignore[arg-type]


def _verdicts(answer: dict[str, Any]) -> dict[str, str]:
    return {
        series["series_uid"]: verdict
        for patient in answer["patients"]
        for verdict in ("matched", "unmatched", "ambiguous")
        for series in patient[verdict]
    }


def test_a_segmentation_dry_run_matches_the_models_modality_and_says_why_others_do_not_run(platform_db: str) -> None:
    cohort = _cohort()
    request = BatchRequest(cohort=cohort, kind="segmentation", selection=Selection(description="^(T2|Axial)"))
    answer = _plan(request, {"model": "m", "modality": "MR"})
    assert _verdicts(answer) == {"1.1.1": "matched", "1.1.2": "unmatched", "2.1.1": "unmatched", "3.1.1": "matched"}
    reasons = {s["series_uid"]: s["reason"] for p in answer["patients"] for s in p["unmatched"]}
    assert "does not match" in reasons["1.1.2"] and "runs on MR" in reasons["2.1.1"]
    assert [p["patient"] for p in answer["patients"]] == ["P1", "P2", "P3"]  # the SEG and 3.1.2 (not in it): absent
    assert answer["counts"] == {"matched": 2, "unmatched": 2, "ambiguous": 0}


def test_a_radiomics_dry_run_reports_two_candidate_segs_as_ambiguous_and_one_as_matched(platform_db: str) -> None:
    cohort = _cohort()
    request = BatchRequest(
        cohort=cohort, kind="radiomics", selection=Selection(modality="MR", series_number=3), seg=SegChoice(tag="final")
    )
    answer = _plan(request, {})
    assert _verdicts(answer) == {"1.1.1": "ambiguous", "1.1.2": "unmatched", "2.1.1": "unmatched", "3.1.1": "matched"}
    p1, _p2, p3 = answer["patients"]
    assert {c["seg_uid"] for c in p1["ambiguous"][0]["candidates"]} == {"9.1", "9.2"}
    assert p3["matched"][0]["seg_uid"] == "9.3"
    assert "series number 4" in p1["unmatched"][0]["reason"]
