"""``/api/segmentations``: the SEGs of a series, labels and predictions alike."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from monailabel.interfaces.utils.app import app_instance

from awesomme.orthanc.datastore import OrthancDatastore

router = APIRouter(tags=["segmentations"])


def _datastore() -> OrthancDatastore:
    datastore = app_instance().datastore()
    assert isinstance(datastore, OrthancDatastore)
    return datastore


def _listing(series_uid: str) -> list[dict[str, Any]]:
    datastore = _datastore()
    datastore.image_state(series_uid)  # 404 for an unknown series
    return [
        {
            "seg_uid": record.seg_series_uid,
            "role": record.role,
            "tag": record.tag,
            "algorithm_type": record.algorithm_type,
            "author": record.author,
            "model": record.model_name,
            "model_version": record.model_version,
            "description": record.description,
            "created_at": record.created_at.isoformat(),
            "segments": record.segments,
            "derived_from": record.derived_from,
        }
        for record in datastore.segmentations_of(series_uid)
    ]


@router.get("/segmentations", summary="The SEGs of a series: author or model, algorithm type, date, segments")
async def list_segmentations(series_uid: str = Query(..., min_length=3, max_length=64)) -> list[dict[str, Any]]:
    return await run_in_threadpool(_listing, series_uid)
