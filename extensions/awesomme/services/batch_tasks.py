"""What a batch's Dask worker runs for one item: the platform's own segmentation pipeline or radiomics extraction,
without writing to the database. The worker returns plain values (a SEG's bytes and its record's fields, or a
feature set's values) and the server's runner stores them (``services/batch_runner.py``).

A worker process is long-lived: it imports torch and MONAI once, keeps the loaded models (the registry) and its own
series cache (a folder of its own: the server's cache is the server's). Task arguments carry no credential: the
Orthanc client reads its settings (the environment and ``var/secrets.env``) in the worker itself.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import asdict
from functools import lru_cache
from typing import Any

from pydicom import Dataset, dcmwrite
from pydicom.uid import UID

from awesomme.core.config import get_settings
from awesomme.core.errors import AwesommeError
from awesomme.core.visibility import EVERYTHING, Principal, visible_as
from awesomme.dicom.seg import DEMO_NOTICE, with_notice
from awesomme.dicom.segmentation_files import SourceFile
from awesomme.inference.registry import get_registry
from awesomme.models import Segmentation
from awesomme.orthanc.cache import SeriesCache
from awesomme.orthanc.client import OrthancClient
from awesomme.orthanc.datastore import OrthancDatastore
from awesomme.services import radiomics
from awesomme.services.segmentation_pipeline import segment_series

__all__ = ["RECORD_FIELDS", "radiomics_item", "segmentation_item", "warm"]

logger = logging.getLogger(__name__)
# The fields of a SEG's record a worker hands back (the server sets UIDs, author and time when it stores).
RECORD_FIELDS = (
    "source_series_uid",
    "study_uid",
    "role",
    "tag",
    "algorithm_type",
    "model_name",
    "model_version",
    "description",
    "segments",
)
_one_at_a_time = threading.Lock()  # one thread per worker; the swap of the datastore's SEG writer relies on it


class _KeepSeg:
    """The datastore's SEG writer in a worker: keeps the encoded SEG, under the item's own UIDs, for the server."""

    def __init__(self, series_uid: str, instance_uid: str, description: str, tag: str) -> None:
        self.series_uid, self.instance_uid = series_uid, instance_uid
        self.description, self.tag = description, tag
        self.seg: Dataset | None = None
        self.record: Segmentation | None = None

    def store(
        self,
        seg: Dataset,
        record: Segmentation,
        operation: str,
        *,
        params: Mapping[str, Any] | None = None,
        source_file: SourceFile | None = None,
    ) -> str:
        seg.SeriesInstanceUID = self.series_uid
        seg.SOPInstanceUID = self.instance_uid
        seg.file_meta.MediaStorageSOPInstanceUID = UID(self.instance_uid)
        if self.tag:  # the batch's tag in both descriptions, a demo notice kept whole
            seg.SeriesDescription = _tagged(f"{self.tag} - {seg.SeriesDescription}")
            seg.ContentDescription = _tagged(f"{seg.ContentDescription} [{self.tag}]")
        self.seg, self.record = seg, record
        return self.series_uid

    def remove(self, record: Segmentation, *, params: Mapping[str, Any] | None = None) -> None:
        raise RuntimeError("a batch worker removes nothing")


def _tagged(text: str) -> str:
    return with_notice(text, DEMO_NOTICE if DEMO_NOTICE in text else None)


@lru_cache(maxsize=1)
def _datastore() -> OrthancDatastore:
    """This worker's datastore: its own Orthanc client and a cache folder of its own."""
    import torch

    torch.set_num_threads(1)  # one thread per worker process: the processes are the parallelism
    settings = get_settings()
    client = OrthancClient(settings)
    cache = SeriesCache(settings.var_dir / "cache" / "batch-workers" / str(os.getpid()), settings.cache_max_bytes // 4)
    return OrthancDatastore(client, cache, _KeepSeg("", "", "", ""), settings.upload_max_bytes, name="batch")


def warm() -> dict[str, Any]:
    """Import and load what items need (torch, MONAI, the models): the cold start, paid once per worker."""
    started = time.perf_counter()
    _datastore()
    models = sorted(get_registry().models)
    return {"pid": os.getpid(), "models": models, "s": round(time.perf_counter() - started, 3)}


def _failure(error: BaseException) -> dict[str, Any]:
    if isinstance(error, AwesommeError):
        return {"error": str(error)[:2000]}
    logger.error("Batch item failed: %s", "".join(traceback.format_exception(error))[-4000:])
    return {"error": f"{type(error).__name__}: {str(error)[:1900]}"}


def segmentation_item(
    model_name: str, series_uid: str, seg_series_uid: str, seg_instance_uid: str, description: str, tag: str
) -> dict[str, Any]:
    """Segment one series with the platform's pipeline; the SEG (DICOM bytes) and its record's fields come back."""
    started = time.perf_counter()
    try:
        with _one_at_a_time, visible_as(EVERYTHING):  # the server checked the series is in the batch's cohort
            loaded = get_registry().models.get(model_name)
            if loaded is None:
                return {"error": f"model {model_name} is not loaded on this worker"}
            datastore = _datastore()
            keep = _KeepSeg(seg_series_uid, seg_instance_uid, description, tag)
            datastore.seg_store = keep
            outcome = segment_series(datastore, loaded, series_uid, description or None)
    except Exception as error:  # the item fails, the batch goes on
        return _failure(error)
    answer: dict[str, Any] = {"pid": os.getpid(), "timings": outcome.timings_s, "seg": None}
    if keep.seg is not None and keep.record is not None:
        buffer = io.BytesIO()
        dcmwrite(buffer, keep.seg, write_like_original=False)
        answer["seg"] = buffer.getvalue()
        answer["record"] = {name: getattr(keep.record, name) for name in RECORD_FIELDS}
    answer["s"] = round(time.perf_counter() - started, 3)
    return answer


def radiomics_item(
    principal: Principal, series_uid: str, seg_uid: str, segment_number: int, preset: str, tag: str
) -> dict[str, Any]:
    """Extract one series' features with the platform's radiomics service; the values come back, unstored."""
    started = time.perf_counter()
    request = radiomics.ExtractionRequest(series_uid, seg_uid, segment_number, preset=preset, tag=tag)
    try:
        with _one_at_a_time, visible_as(EVERYTHING):  # the server checked the series is in the batch's cohort
            values = radiomics.compute(_datastore(), principal, request)
    except Exception as error:  # the item fails, the batch goes on
        return _failure(error)
    return {"pid": os.getpid(), "values": asdict(values), "s": round(time.perf_counter() - started, 3)}
