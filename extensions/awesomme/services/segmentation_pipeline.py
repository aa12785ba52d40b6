"""An automatic segmentation of a stored series: fetch and decode, forward pass, SEG, store; each phase timed."""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from highdicom.seg import SegmentAlgorithmTypeValues
from pydicom import Dataset

from awesomme.core.errors import InvalidInput
from awesomme.dicom.seg import SegContent, encode_seg, seg_content
from awesomme.dicom.volumes import Volume
from awesomme.inference.predict import predict
from awesomme.inference.registry import LoadedModel
from awesomme.models import Segmentation, SegmentationOperation, SegmentationRole
from awesomme.orthanc.client import SeriesState
from awesomme.orthanc.datastore import PREDICTION_TAG, OrthancDatastore

__all__ = ["SegmentationOutcome", "segment_series"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentationOutcome:
    volume: Volume
    label_map: np.ndarray
    confidence: float
    seg: Dataset | None  # the SEG stored, as encoded (None when nothing was segmented)
    segments: list[dict]
    timings_s: dict[str, float]

    @property
    def seg_series_uid(self) -> str | None:
        return str(self.seg.SeriesInstanceUID) if self.seg is not None else None


def segment_series(
    datastore: OrthancDatastore,
    model: LoadedModel,
    image_id: str,
    description: str | None = None,
    answer: Callable[[np.ndarray, Volume], object] | None = None,
) -> SegmentationOutcome:
    """Segment ``image_id`` and store the SEG; ``answer(label_map, volume)`` writes the caller's reply meanwhile.

    A worker thread gets what the SEG references while the network runs (kept from the decode this request made,
    else read from Orthanc), then encodes and stores the SEG while ``answer`` runs here (both release the GIL for
    their heavy parts: numpy, gzip, sockets); the outcome is returned once both are done, so the SEG is stored
    before anyone hears of it.
    """
    config = model.config
    timings: dict[str, float] = {}
    start = time.perf_counter()
    state = datastore.image_state(image_id)
    if state.modality != config.modality:
        raise InvalidInput(f"model {config.name} runs on {config.modality}; series {image_id} is {state.modality}")
    volume = datastore.load_volume(state)
    timings["fetch_decode"] = time.perf_counter() - start

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="seg-store") as worker:
        # what the SEG references: kept from the decode, or read from Orthanc while the network runs
        source = worker.submit(contextvars.copy_context().run, datastore.source_metadata, state)
        prediction = predict(model.network, volume.array, config, volume.affine)
        timings.update(prediction.timings_s)  # pre, forward, post

        names = {value: name for name, value in config.labels.items()}
        try:
            content: SegContent | None = seg_content(prediction.label_map, names)
        except InvalidInput:  # nothing segmented: no SEG to store
            content = None
        segments = content.summary(volume.grid.voxel_volume_ml) if content else []
        stored = (
            worker.submit(
                contextvars.copy_context().run,
                _store_seg,
                datastore,
                model,
                state,
                source,
                content,
                description,
                segments,
                timings,
            )
            if content
            else None
        )
        if answer is not None:
            start = time.perf_counter()
            answer(prediction.label_map, volume)
            timings["answer"] = time.perf_counter() - start
        seg = stored.result() if stored else None
    logger.info(
        "Inference %s %s on %s: %s",
        config.name,
        config.version,
        image_id,
        ", ".join(f"{phase} {seconds:.3f} s" for phase, seconds in timings.items()),
    )
    return SegmentationOutcome(volume, prediction.label_map, prediction.confidence, seg, segments, timings)


def _store_seg(
    datastore: OrthancDatastore,
    model: LoadedModel,
    state: SeriesState,
    source: Future[list[Dataset]],
    content: SegContent,
    description: str | None,
    segments: list[dict],
    timings: dict[str, float],
) -> Dataset:
    """Encode and store the prediction's SEG; returns it as stored."""
    config = model.config
    start = time.perf_counter()
    seg = encode_seg(
        source.result(),
        content,
        algorithm_type=SegmentAlgorithmTypeValues.AUTOMATIC,
        series_description=f"{config.name} {config.version}",
        content_description=description or f"{config.name} {config.version}",
        algorithm_name=config.name,
        algorithm_version=config.version,
        demo=config.demo_weights,  # the notice ends both descriptions, however long the user's description
    )
    timings["seg_encode"] = time.perf_counter() - start
    start = time.perf_counter()
    datastore.seg_store.store(
        seg,
        Segmentation(
            source_series_uid=state.series_uid,
            study_uid=state.study_uid,
            role=SegmentationRole.PREDICTION,
            tag=PREDICTION_TAG,
            algorithm_type=SegmentAlgorithmTypeValues.AUTOMATIC.value,
            model_name=config.name,
            model_version=config.version,
            description=description,
            segments=segments,
            demo_weights=config.demo_weights,
        ),
        SegmentationOperation.INFERENCE,
        params={"model": config.name, "model_version": config.version},
    )
    timings["store"] = time.perf_counter() - start
    return seg
