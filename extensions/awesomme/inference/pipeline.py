"""An automatic segmentation of a stored series: fetch and decode, forward pass, SEG, store; each phase timed."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from awesomme.core.errors import InvalidInput
from awesomme.inference.predict import predict
from awesomme.inference.registry import LoadedModel
from awesomme.models import Segmentation, SegmentationRole
from awesomme.orthanc.datastore import PREDICTION_TAG, OrthancDatastore
from awesomme.orthanc.seg import build_seg, segment_summary
from awesomme.orthanc.volumes import Volume

__all__ = ["DEMO_NOTICE", "SegmentationOutcome", "segment_series"]

logger = logging.getLogger(__name__)
DEMO_NOTICE = "DEMO weights - not for clinical use"


@dataclass(frozen=True)
class SegmentationOutcome:
    volume: Volume
    label_map: np.ndarray
    confidence: float
    seg_series_uid: str | None
    segments: list[dict]
    timings_s: dict[str, float]


def segment_series(
    datastore: OrthancDatastore, model: LoadedModel, image_id: str, description: str | None = None
) -> SegmentationOutcome:
    config = model.config
    timings: dict[str, float] = {}
    start = time.perf_counter()
    state = datastore.image_state(image_id)
    if state.modality != config.modality:
        raise InvalidInput(f"model {config.name} runs on {config.modality}; series {image_id} is {state.modality}")
    volume = datastore.load_volume(state)
    timings["fetch_decode"] = time.perf_counter() - start

    prediction = predict(model.network, volume.array, config)
    timings["forward"] = prediction.timings_s["pre"] + prediction.timings_s["forward"]
    timings["post"] = prediction.timings_s["post"]

    names = {value: name for name, value in config.labels.items()}
    segments = segment_summary(prediction.label_map, names, volume.grid.voxel_volume_ml)
    seg_uid = None
    if segments:  # a SEG must hold at least one segmented voxel
        start = time.perf_counter()
        source = datastore.source_metadata(state)
        notice = DEMO_NOTICE if config.demo_weights else f"{config.name} {config.version}"
        seg = build_seg(
            source,
            prediction.label_map,
            names,
            algorithm_type="AUTOMATIC",
            series_description=f"{config.name} {config.version}" + (f" - {DEMO_NOTICE}" if config.demo_weights else ""),
            content_description=f"{description} ({notice})" if description else notice,
            algorithm_name=config.name,
            algorithm_version=config.version,
        )
        timings["seg_encode"] = time.perf_counter() - start
        start = time.perf_counter()
        seg_uid = datastore.store_segmentation(
            seg,
            Segmentation(
                source_series_uid=image_id,
                study_uid=state.study_uid,
                role=SegmentationRole.PREDICTION,
                tag=PREDICTION_TAG,
                algorithm_type="AUTOMATIC",
                model_name=config.name,
                model_version=config.version,
                description=description,
                segments=segments,
            ),
        )
        timings["store"] = time.perf_counter() - start
    logger.info(
        "Inference %s %s on %s: %s",
        config.name,
        config.version,
        image_id,
        ", ".join(f"{phase} {seconds:.3f} s" for phase, seconds in timings.items()),
    )
    return SegmentationOutcome(volume, prediction.label_map, prediction.confidence, seg_uid, segments, timings)
