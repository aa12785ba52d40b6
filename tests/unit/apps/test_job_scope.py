"""Jobs name their scope: a platform admin's sees everything, even in MONAI Label's worker threads; one with no
scope in its request sees nothing."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from awesomme.core.visibility import EVERYTHING, JOB_COHORTS_FIELD, NOTHING, Visibility, current_visibility

APP_DIR = Path(__file__).resolve().parents[3] / "apps" / "awesomme"


@pytest.fixture(scope="module")
def app_class() -> Any:
    sys.path.insert(0, str(APP_DIR))
    try:
        from main import AwesommeApp  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(APP_DIR))
    return AwesommeApp


def _app(seen: list[Visibility]) -> SimpleNamespace:
    def infer(request: dict[str, Any], datastore: Any = None) -> dict[str, Any]:
        seen.append(current_visibility.get())
        return {}

    def batch_in_threads(request: dict[str, Any], datastore: Any, run: Any) -> dict[str, Any]:
        """As MONAI Label's batch inference does: each image in a worker thread (which starts without context)."""
        workers = [threading.Thread(target=run, args=({"image": uid}, datastore)) for uid in ("a", "b")]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return {}

    return SimpleNamespace(infer=infer, _batch_infer=batch_in_threads, datastore=lambda: "store")


def test_a_platform_admins_batch_sees_everything_in_every_worker_thread(app_class: Any) -> None:
    seen: list[Visibility] = []
    app_class.batch_infer(_app(seen), {JOB_COHORTS_FIELD: None, "model": "m"})
    assert seen == [EVERYTHING, EVERYTHING]
    assert current_visibility.get() == NOTHING  # the scope ended with the job


def test_a_batch_without_a_scope_sees_nothing(app_class: Any) -> None:
    seen: list[Visibility] = []
    app_class.batch_infer(_app(seen), {"model": "m"})
    assert seen == [NOTHING, NOTHING]
