"""The inference pipeline hands predict the decoded volume's affine: a model declared at 1.5 mm answers on the
series' 0.7 x 0.7 x 3 mm grid, and the SEG it stores is of that label map."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pytest

from awesomme.dicom.volumes import Volume
from awesomme.inference.registry import LoadedModel
from awesomme.orthanc.client import SeriesState
from awesomme.orthanc.datastore import OrthancDatastore
from awesomme.services import segmentation_pipeline
from tests.unit.inference.test_resampling import (
    SERIES_SHAPE,
    BoxErosion,
    dice,
    model_config,
    series_affine,
    series_volume,
    to_sitk,
    truth_on_series_grid,
)

STATE = SeriesState("o1", "1.2.3.4", "1.2.3", "MR", SERIES_SHAPE[0], "20260101T000000")


class FakeDatastore:
    def __init__(self, volume: Volume) -> None:
        self.volume = volume

    def image_state(self, image_id: str) -> SeriesState:
        return STATE

    def load_volume(self, state: SeriesState) -> Volume:
        return self.volume

    def source_metadata(self, state: SeriesState) -> list[Any]:
        return []


def test_a_resampling_model_segments_a_stored_series_on_the_series_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    affine = series_affine()
    volume = Volume(series_volume(affine), affine, STATE.series_uid, "MR")
    stored: dict[str, Any] = {}
    monkeypatch.setattr(segmentation_pipeline, "_store_seg", lambda *args: stored.setdefault("content", args[4]))
    model = LoadedModel(model_config(geometry=True), BoxErosion().eval())
    outcome = segmentation_pipeline.segment_series(
        cast(OrthancDatastore, FakeDatastore(volume)), model, STATE.series_uid
    )
    assert outcome.label_map.shape == SERIES_SHAPE
    assert np.array_equal(stored["content"].label_map, outcome.label_map)
    truth = truth_on_series_grid(to_sitk(volume.array, affine))
    assert dice(outcome.label_map == 1, truth == 1) > 0.9
