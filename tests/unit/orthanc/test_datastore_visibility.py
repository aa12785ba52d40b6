"""The datastore fails closed: code that runs outside a request and names no scope sees no series at all."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from pydicom import Dataset

from awesomme.core.errors import NotFound
from awesomme.core.visibility import EVERYTHING, Visibility, current_visibility, visible_as
from awesomme.orthanc.cache import SeriesCache
from awesomme.orthanc.client import OrthancClient, SeriesState
from awesomme.orthanc.datastore import OrthancDatastore
from awesomme.services.seg_store import SegStore

STUDY, SERIES = "1.2.3", "1.2.3.4"


def _hit(study: str, series: str) -> Dataset:
    hit = Dataset()
    hit.StudyInstanceUID, hit.SeriesInstanceUID, hit.Modality = study, series, "CT"
    return hit


@dataclass
class FakeOrthanc:
    """Orthanc holding one CT series."""

    def find_series(self, modalities: tuple[str, ...] = ("CT", "MR")) -> list[Dataset]:
        return [_hit(STUDY, SERIES)] if "CT" in modalities else []

    def series_state(self, series_uid: str) -> SeriesState:
        if series_uid != SERIES:
            raise NotFound(series_uid)
        return SeriesState("o1", SERIES, STUDY, "CT", 3, "20260101T000000")


@pytest.fixture()
def datastore(tmp_path: Path) -> OrthancDatastore:
    client, cache = cast(OrthancClient, FakeOrthanc()), SeriesCache(tmp_path, 1 << 20)
    return OrthancDatastore(client, cache, SegStore(client, cache), 1 << 20)


def _in_fresh_thread(work: Any) -> Any:
    """Run ``work`` in a thread started without this context, as a worker or a scheduler's job would be."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = work()
        except Exception as error:  # handed back to the test
            result["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def test_the_scope_is_nothing_where_no_one_set_it() -> None:
    assert _in_fresh_thread(current_visibility.get) == Visibility()


def test_a_worker_thread_without_the_context_sees_nothing(datastore: OrthancDatastore) -> None:
    with visible_as(EVERYTHING):  # the caller sees everything; the thread it starts does not inherit that
        assert datastore.list_images() == [SERIES]
        assert _in_fresh_thread(datastore.list_images) == []
        with pytest.raises(NotFound):
            _in_fresh_thread(lambda: datastore.image_state(SERIES))
        assert _in_fresh_thread(lambda: datastore.images_of("CT")) == set()


def test_a_job_sees_what_its_named_scope_holds(datastore: OrthancDatastore) -> None:
    def platform_job() -> list[str]:
        with visible_as(EVERYTHING):
            return datastore.list_images()

    def cohort_job() -> list[str]:
        with visible_as(Visibility(studies=frozenset({STUDY}))):
            return datastore.list_images()

    def other_cohort_job() -> list[str]:
        with visible_as(Visibility(studies=frozenset({"9.9"}))):
            return datastore.list_images()

    assert _in_fresh_thread(platform_job) == [SERIES]
    assert _in_fresh_thread(cohort_job) == [SERIES]
    assert _in_fresh_thread(other_cohort_job) == []
    assert current_visibility.get() == Visibility()  # each job's scope ended with it
