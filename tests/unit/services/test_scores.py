"""Score types and scores in the platform DB: who defines types, value checks, cohort filtering of scores."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from awesomme.core.db import engine_for, migrate
from awesomme.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from awesomme.core.visibility import Principal, visibility_of
from awesomme.models import Cohort, CohortItem, Score, ScoreType
from awesomme.services.score_types import (
    NewScoreType,
    category_index,
    check_value,
    create_score_type,
    list_score_types,
    score_type_for_cohort,
)
from awesomme.services.scores import cohort_scores, sees_score

ROOT = Principal(1, "root", True)
ALPHA_ADMIN = Principal(2, "ann", False, {1: "admin"})
ALPHA_MEMBER = Principal(3, "bob", False, {1: "member"})
BETA_MEMBER = Principal(4, "cat", False, {2: "member"})


@pytest.fixture()
def session(db_url: str) -> Iterator[Session]:
    migrate(db_url)
    with Session(engine_for(db_url)) as db:
        for name in ("alpha", "beta"):
            db.add(Cohort(name=name, created_by="t"))
        db.flush()
        db.add(CohortItem(cohort_id=1, study_uid="1.1", added_by="t"))  # alpha: a whole study
        db.add(CohortItem(cohort_id=2, study_uid="2.1", series_uid="2.1.1", added_by="t"))  # beta: one series
        db.flush()
        yield db


def _type(session: Session, key: str) -> ScoreType:
    found = session.scalar(select(ScoreType).where(ScoreType.key == key))
    assert found is not None
    return found


def test_the_migration_seeds_the_built_in_types(session: Session) -> None:
    types = {t.key: t for t in list_score_types(session, BETA_MEMBER)}
    assert set(types) == {"mrs", "free_text", "numeric"}
    assert list(types["mrs"].labels or {}) == [str(grade) for grade in range(7)] and types["mrs"].kind == "ordinal"
    assert (types["numeric"].minimum, types["numeric"].maximum) == (0.0, 100.0)


def test_values_are_checked_against_their_type(session: Session) -> None:
    mrs, numeric, text = _type(session, "mrs"), _type(session, "numeric"), _type(session, "free_text")
    assert check_value(mrs, 0) == 0 and check_value(mrs, "6") == 6
    for bad in (7, -1, 2.5, True, "two", None, [1]):
        with pytest.raises(InvalidInput):
            check_value(mrs, bad)
    assert check_value(numeric, 0) == 0 and check_value(numeric, 99.5) == 99.5
    for bad in (100.01, -0.1, "5", float("nan"), False):
        with pytest.raises(InvalidInput):
            check_value(numeric, bad)
    assert check_value(text, "fine") == "fine"
    for bad in ("", "   ", "x" * 4001, 5):
        with pytest.raises(InvalidInput):
            check_value(text, bad)
    assert category_index(mrs, 4) == 4


@pytest.mark.parametrize("reference", ["999999999999999999999999999999", "9223372036854775808", "0", -1, "²", "nope"])
def test_a_reference_naming_no_type_is_a_clear_422_whatever_its_size(session: Session, reference: str | int) -> None:
    with pytest.raises(InvalidInput, match="no score type"):
        score_type_for_cohort(session, ROOT, reference, 1)


def test_a_type_is_found_by_id_or_key(session: Session) -> None:
    mrs = _type(session, "mrs")
    assert score_type_for_cohort(session, ROOT, str(mrs.id), 1) is mrs
    assert score_type_for_cohort(session, ROOT, mrs.id, 1) is mrs
    assert score_type_for_cohort(session, ALPHA_MEMBER, "mrs", 1) is mrs


def test_who_defines_which_types(session: Session) -> None:
    grade = NewScoreType(key="grade", kind="nominal", labels={"low": "Low", "high": "High"}, cohort_id=1)
    created = create_score_type(session, ALPHA_ADMIN, grade)
    assert created.cohort_id == 1 and created.created_by == "ann"
    assert check_value(created, "high") == "high" and category_index(created, "high") == 1
    with pytest.raises(InvalidInput):
        check_value(created, "medium")
    with pytest.raises(Forbidden):
        create_score_type(session, ALPHA_MEMBER, NewScoreType(key="other", kind="text", cohort_id=1))
    with pytest.raises(Forbidden):
        create_score_type(session, ALPHA_ADMIN, NewScoreType(key="other", kind="text"))  # platform-wide
    with pytest.raises(NotFound):
        create_score_type(session, ALPHA_ADMIN, NewScoreType(key="other", kind="text", cohort_id=2))
    with pytest.raises(Conflict):
        create_score_type(session, ALPHA_ADMIN, grade)
    with pytest.raises(Conflict):
        create_score_type(session, ROOT, NewScoreType(key="grade", kind="text"))  # would shadow alpha's
    beta_grade = create_score_type(session, ROOT, NewScoreType(key="grade", kind="text", cohort_id=2))
    assert beta_grade.cohort_id == 2  # keys are unique per cohort
    assert "grade" not in {t.key for t in list_score_types(session, Principal(9, "x", False, {}))}
    assert {t.cohort_id for t in list_score_types(session, ALPHA_MEMBER) if t.key == "grade"} == {1}
    for bad in (
        NewScoreType(key="Bad Key", kind="text"),
        NewScoreType(key="size", kind="numeric"),
        NewScoreType(key="size", kind="numeric", minimum=3, maximum=1),
        NewScoreType(key="size", kind="text", minimum=0, maximum=1),
        NewScoreType(key="size", kind="ordinal", labels={"a": "only"}),
        NewScoreType(key="size", kind="vague"),
    ):
        with pytest.raises(InvalidInput):
            create_score_type(session, ROOT, bad)


def _add(session: Session, **fields: object) -> Score:
    score = Score(**{"target_kind": "series", "score_type_id": 1, "value": 1, "comment": "", "rater": "bob", **fields})
    session.add(score)
    session.flush()
    return score


def test_scores_belong_to_their_series_cohorts(session: Session) -> None:
    in_alpha = _add(session, target_uid="1.1.5", study_uid="1.1", series_uid="1.1.5")
    alpha_study = _add(session, target_uid="1.1", study_uid="1.1", series_uid="")
    in_beta = _add(session, target_uid="2.1.1", study_uid="2.1", series_uid="2.1.1")
    beta_sibling = _add(session, target_uid="2.1.2", study_uid="2.1", series_uid="2.1.2")  # in no cohort
    beta_study = _add(session, target_uid="2.1", study_uid="2.1", series_uid="")  # beta has only one series
    from_csv = _add(session, target_uid="7", target_kind="prediction", study_uid="", series_uid="", cohort_id=2)
    assert [s.id for s in cohort_scores(session, 1)] == [in_alpha.id, alpha_study.id]
    assert [s.id for s in cohort_scores(session, 2)] == [in_beta.id, from_csv.id]
    assert cohort_scores(session, 1, score_type_id=2) == []
    for principal, seen in (
        (ALPHA_MEMBER, {in_alpha.id, alpha_study.id}),
        (BETA_MEMBER, {in_beta.id, from_csv.id}),
        (ROOT, {in_alpha.id, alpha_study.id, in_beta.id, beta_sibling.id, beta_study.id, from_csv.id}),
    ):
        visibility = visibility_of(session, principal)
        everything = [in_alpha, alpha_study, in_beta, beta_sibling, beta_study, from_csv]
        assert {s.id for s in everything if sees_score(principal, visibility, s)} == seen, principal.username
