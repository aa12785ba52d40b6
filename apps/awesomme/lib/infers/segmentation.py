"""A segmentation model from ``infer_configs/`` as a MONAI Label infer task, on series stored in Orthanc."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from monailabel.interfaces.tasks.infer_v2 import InferTask, InferType

from awesomme.core.errors import InvalidInput
from awesomme.dicom.label_files import LABEL_FILE_SUFFIXES, write_label_file
from awesomme.inference.registry import LoadedModel
from awesomme.orthanc.datastore import OrthancDatastore
from awesomme.services.segmentation_pipeline import SegmentationOutcome, segment_series

DICOM_SUFFIX = ".dcm"


class SegmentationTask(InferTask):
    def __init__(self, model: LoadedModel) -> None:
        config = model.config
        super().__init__(
            type=InferType.SEGMENTATION,
            labels=dict(config.labels),
            dimension=2 if config.inference.mode == "slices" else 3,
            description=config.description,
            config={"result_extension": ".nii.gz", "version": config.version, "modality": config.modality},
        )
        self.model = model

    def is_valid(self) -> bool:
        return True

    def __call__(self, request: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        raise InvalidInput("this model runs on series stored in the platform: give the image's SeriesInstanceUID")

    def _segment(
        self, datastore: OrthancDatastore, request: dict[str, Any], suffix: str, result: Path
    ) -> SegmentationOutcome:
        """A label file is written while the SEG is stored; a SEG answer is the stored SEG itself, as encoded."""
        if suffix != DICOM_SUFFIX:
            return segment_series(
                datastore,
                self.model,
                str(request["image"]),
                request.get("description"),
                answer=lambda label_map, volume: write_label_file(label_map, volume.grid, result),
            )
        outcome = segment_series(datastore, self.model, str(request["image"]), request.get("description"))
        if outcome.seg is None:
            raise InvalidInput("the model found nothing to segment: there is no SEG to return")
        outcome.seg.save_as(result, write_like_original=False)
        return outcome

    def run(self, datastore: OrthancDatastore, request: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Segment the series ``request["image"]``; returns the result file (removed after the answer) and params."""
        start = time.perf_counter()
        suffix = str(request.get("result_extension") or ".nii.gz")
        if suffix not in (*LABEL_FILE_SUFFIXES, DICOM_SUFFIX):
            raise InvalidInput(
                f"result_extension {suffix!r} is not one of {', '.join((*LABEL_FILE_SUFFIXES, DICOM_SUFFIX))}"
            )
        with tempfile.NamedTemporaryFile(suffix=suffix, delete=False) as handle:
            result = Path(handle.name)
        try:
            outcome = self._segment(datastore, request, suffix, result)
        except BaseException:
            result.unlink(missing_ok=True)  # MONAI Label removes the result only after an answer
            raise
        config = self.model.config
        params = {
            "model": config.name,
            "model_version": config.version,
            "demo_weights": config.demo_weights,
            "seg_series_uid": outcome.seg_series_uid,
            "segments": outcome.segments,
            "label_names": dict(config.labels),
            "confidence": round(outcome.confidence, 4),
            "timings_s": {
                **{phase: round(seconds, 4) for phase, seconds in outcome.timings_s.items()},
                "total": round(time.perf_counter() - start, 4),  # the phases and what lies between them
            },
        }
        return str(result), params
