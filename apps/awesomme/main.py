"""The AWESOMME app for MONAI Label: images and labels live in Orthanc, models come from ``infer_configs/``."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from lib.activelearning.uncertainty import TTAUncertainty
from lib.infers.segmentation import SegmentationTask
from lib.trainers.segmentation import SegmentationTrainer
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.datastore import Datastore, DefaultLabelTag
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.interfaces.tasks.strategy import Strategy
from monailabel.interfaces.tasks.train import TrainTask
from monailabel.tasks.activelearning.first import First
from monailabel.tasks.activelearning.random import Random

from awesomme import __version__
from awesomme.core.audit import audit_context
from awesomme.core.config import get_settings
from awesomme.core.db import session_scope
from awesomme.core.errors import Forbidden, NotFound
from awesomme.core.visibility import (
    EVERYTHING,
    JOB_COHORTS_FIELD,
    current_visibility,
    visibility_of_cohorts,
    visible_as,
)
from awesomme.inference.registry import get_registry
from awesomme.orthanc.cache import SeriesCache
from awesomme.orthanc.client import get_client
from awesomme.orthanc.datastore import OrthancDatastore
from awesomme.runtime.warm_up import warm_up_seg_codec
from awesomme.services import sample_grants
from awesomme.services.seg_store import SegStore

logger = logging.getLogger(__name__)


class AwesommeApp(MONAILabelApp):
    def __init__(self, app_dir: str, studies: str, conf: dict[str, Any]) -> None:
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="AWESOMME",
            description="View, segment, extract radiomics and score medical images in one secure place",
            version=__version__,
        )

    def init_datastore(self) -> Datastore:
        settings = get_settings()
        client, cache = get_client(), SeriesCache(settings.cache_dir, settings.cache_max_bytes)
        return OrthancDatastore(
            client=client,
            cache=cache,
            seg_store=SegStore(client, cache),  # the one way SEGs are stored and removed, journaled
            upload_max_bytes=settings.upload_max_bytes,
            name="Orthanc",
            description="DICOM series in the platform's Orthanc",
        )

    def on_init_complete(self) -> None:
        super().on_init_complete()
        seconds = warm_up_seg_codec(get_settings().var_dir / "tmp")
        logger.info("SEG codec warmed up in %.2f s (first-call costs paid before any request)", seconds)

    def init_infers(self) -> dict[str, InferTask]:
        return {name: SegmentationTask(model) for name, model in get_registry().models.items()}

    def init_trainers(self) -> dict[str, TrainTask]:
        models_dir = get_settings().models_dir
        return {name: SegmentationTrainer(model, models_dir) for name, model in get_registry().models.items()}

    def info(self, status: bool = False) -> dict[str, Any]:
        """MONAI Label's app info; the datastore's status and the training statistics only with ``status``.

        MONAI Label's routes read ``info()`` on every call (``/infer`` for per-request defaults, which we do not
        set), and the status lists every series in Orthanc and every label: 27 ms of each inference with 15 series,
        and more as the archive grows. ``GET /info/`` (``awesomme.api.routes.app_info``) asks for the status.
        """
        models = {name: task.info() for name, task in self._infers.items() if task.is_valid()}
        meta = {
            "name": self.name,
            "description": self.description,
            "version": self.version,
            "labels": self.labels or _labels_of(models),
            "device": str(get_registry().device),  # where the served networks run: cpu or cuda:<n>
            "models": models,
            "trainers": {name: task.info() for name, task in self._trainers.items()},
            "strategies": {name: strategy.info() for name, strategy in self._strategies.items()},
            "scoring": {name: method.info() for name, method in self._scoring_methods.items()},
        }
        if status:
            meta["train_stats"] = {name: task.stats() for name, task in self._trainers.items()}
            meta["datastore"] = self._datastore.status()
        return meta

    def infer(self, request: dict[str, Any], datastore: Datastore | None = None) -> dict[str, Any]:
        """Our models read the series straight from the datastore (no NIfTI round trip through MONAI's loaders)."""
        task = self._infers.get(request.get("model", ""))
        image = request.get("image")
        if isinstance(task, SegmentationTask) and isinstance(image, str) and not os.path.exists(image):
            store = datastore or self.datastore()
            assert isinstance(store, OrthancDatastore)
            result, params = task.run(store, request)
            return {"label": result, "tag": DefaultLabelTag.ORIGINAL, "file": result, "params": params}
        if not current_visibility.get().everything:  # an uploaded file belongs to no cohort
            raise Forbidden("inference on an uploaded file is for platform admins: name a series with ?image=")
        return super().infer(request, datastore)

    # Jobs started for a cohort admin see only that admin's cohorts bound to the model (set by the access table).
    def train(self, request: dict[str, Any]) -> Any:
        return _for_job_cohorts(request, super().train)

    def batch_infer(self, request: dict[str, Any], datastore: Datastore | None = None) -> Any:
        def job(job_request: dict[str, Any]) -> Any:
            # MONAI Label runs a batch's images in worker threads, which start without the job's scope: pass it on.
            scope = current_visibility.get()

            def infer(image_request: dict[str, Any], store: Datastore | None = None) -> dict[str, Any]:
                with visible_as(scope):
                    return self.infer(image_request, store)

            return self._batch_infer(job_request, datastore or self.datastore(), infer)

        return _for_job_cohorts(request, job)

    def scoring(self, request: dict[str, Any], datastore: Datastore | None = None) -> Any:
        return _for_job_cohorts(request, lambda r: super(AwesommeApp, self).scoring(r, datastore))

    def next_sample(self, request: dict[str, Any]) -> dict[str, Any]:
        """The strategy's pick among the series of the request's cohorts (set by the access table); ids only.

        MONAI Label's own adds the image's path on the server (a cache file, decoded for the answer): never sent.
        """
        name = str(request.get("strategy") or "random")
        strategy = self._strategies.get(name)
        if strategy is None:
            raise NotFound(f"no strategy {name[:64]}; there are {', '.join(sorted(self._strategies))}")
        picked = _for_job_cohorts(request, lambda r: _with_download(strategy(r, self.datastore()), self.datastore()))
        if not picked or not picked.get("id"):
            return {}
        return {key: value for key, value in picked.items() if key != "path"}

    def init_strategies(self) -> dict[str, Strategy]:
        return {"first": First(), "random": Random(), "uncertainty": TTAUncertainty(get_registry())}


def _with_download(picked: dict[str, Any] | None, store: Datastore) -> dict[str, Any] | None:
    """What 3D Slicer's module needs to fetch the sample with no token: a file name ITK reads, the checksum of
    the bytes ``GET /datastore/image`` will serve, and a one-time grant of that download to the caller's address
    (``awesomme.services.sample_grants``). Runs in the job's scope: the series is one the caller may see."""
    if not picked or not picked.get("id") or not isinstance(store, OrthancDatastore):
        return picked
    series_uid = str(picked["id"])
    picked = {**picked, "name": f"{series_uid}.nii.gz", "checksum": store.image_checksum(series_uid)}
    context = audit_context.get()
    if context is not None and context.actor:
        with session_scope() as session:
            sample_grants.grant(session, context.actor, series_uid, context.source)
    return picked


def _labels_of(models: dict[str, Any]) -> list[str]:
    """Every model's label names, in the order MONAI Label's info gives them: by each model's label values."""
    merged: list[str] = []
    for model in models.values():
        labels = model.get("labels") or []
        names = sorted(labels, key=lambda name: labels[name]) if isinstance(labels, dict) else labels
        for name in names:
            if name not in merged:
                merged.append(name)
    return merged


def _for_job_cohorts(request: dict[str, Any], job: Callable[[dict[str, Any]], Any]) -> Any:
    """Run a job with the scope the access table gave it: None for a platform admin's (everything), else cohorts.

    A job whose request has no scope at all (not started through our routes) runs with the caller's, which is
    nothing outside a request: visibility fails closed.
    """
    if JOB_COHORTS_FIELD not in request:
        return job(request)
    cohorts = request.pop(JOB_COHORTS_FIELD)
    if cohorts is None:
        visibility = EVERYTHING
    else:
        with session_scope() as session:
            visibility = visibility_of_cohorts(session, {int(cohort) for cohort in cohorts})
    with visible_as(visibility):
        return job(request)
