from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from awesomme.core.db import engine_for, migrate
from awesomme.core.visibility import Principal, cohorts_of_series, visibility_of
from awesomme.models import Cohort, CohortItem, Segmentation


@pytest.fixture()
def session(db_url: str) -> Iterator[Session]:
    migrate(db_url)
    with Session(engine_for(db_url)) as db:
        for name in ("a", "b"):
            db.add(Cohort(name=name, created_by="t"))
        db.flush()
        db.add(CohortItem(cohort_id=1, study_uid="1.1", added_by="t"))  # whole study
        db.add(CohortItem(cohort_id=2, study_uid="2.1", series_uid="2.1.1", added_by="t"))  # one series
        db.add(
            Segmentation(
                seg_series_uid="2.1.9",
                seg_sop_uid="2.1.9.1",
                source_series_uid="2.1.1",
                study_uid="2.1",
                role="label",
                tag="final",
                author="x",
                segments=[],
            )
        )
        db.flush()
        yield db


def test_whole_studies_single_series_and_derived_segs(session: Session) -> None:
    seen = visibility_of(session, Principal(1, "u", False, {2: "member"}))
    assert seen.sees_series("2.1", "2.1.1") and seen.sees_series("2.1", "2.1.9")  # the SEG follows its source
    assert not seen.sees_series("2.1", "2.1.2")  # a sibling series stays hidden
    assert seen.sees_study("2.1") and not seen.sees_whole_study("2.1")
    assert not seen.sees_series("1.1", "1.1.1") and not seen.sees_study("1.1")


def test_platform_admins_see_everything_and_narrowing_keeps_to_own_cohorts(session: Session) -> None:
    assert visibility_of(session, Principal(1, "root", True)).everything
    member = Principal(2, "m", False, {1: "member"})
    assert not visibility_of(session, member, cohorts=[2]).sees_series("2.1", "2.1.1")  # not theirs to ask for
    assert visibility_of(session, member).sees_series("1.1", "1.1.7")


def test_cohorts_of_a_series_and_of_its_seg(session: Session) -> None:
    assert cohorts_of_series(session, "1.1", "1.1.5") == {1}
    assert cohorts_of_series(session, "2.1", "2.1.9") == {2}
    assert cohorts_of_series(session, "3.1", "3.1.1") == set()
