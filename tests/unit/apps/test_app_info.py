"""The app's info: MONAI Label's routes read it on every call, so the datastore's status comes only when asked."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import Mock

import pytest

APP_DIR = Path(__file__).resolve().parents[3] / "apps" / "awesomme"


@pytest.fixture(scope="module")
def app_class() -> Any:
    sys.path.insert(0, str(APP_DIR))  # MONAI Label imports an app from its directory, ``lib`` beside ``main.py``
    try:
        from main import AwesommeApp  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(APP_DIR))
    return AwesommeApp


def _task(**info: Any) -> Mock:
    return Mock(info=Mock(return_value=info), is_valid=Mock(return_value=True), stats=Mock(return_value={"epochs": 3}))


def _app() -> SimpleNamespace:
    return SimpleNamespace(
        name="AWESOMME",
        description="d",
        version="1",
        labels=None,
        _infers={"lung": _task(labels={"lung": 1}), "nodule": _task(labels={"vessel": 2, "nodule": 1, "lung": 3})},
        _trainers={"lung": _task()},
        _strategies={"first": _task()},
        _scoring_methods={},
        _datastore=Mock(status=Mock(return_value={"total": 7, "completed": 1, "label_tags": {}})),
    )


def test_info_for_monailabels_routes_does_not_list_the_datastore(app_class: Any) -> None:
    app = _app()
    info = app_class.info(app)
    assert "datastore" not in info and "train_stats" not in info
    app._datastore.status.assert_not_called()
    assert set(info["models"]) == {"lung", "nodule"}
    assert info["labels"] == ["lung", "nodule", "vessel"]  # merged as MONAI Label merges them: by label value


def test_info_with_status_is_what_get_info_shows(app_class: Any) -> None:
    app = _app()
    info = app_class.info(app, status=True)
    assert info["datastore"] == {"total": 7, "completed": 1, "label_tags": {}}
    assert info["train_stats"] == {"lung": {"epochs": 3}}
    app._datastore.status.assert_called_once()
