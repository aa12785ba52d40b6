"""The one way a SEG enters or leaves the platform: Orthanc, its records and the journal, all or nothing.

Every writer (an inference, a label saved through MONAI Label, an import, an interpolation) hands its encoded SEG
and record here. The SEG is stored in Orthanc, then its record, its origin (who made it here, and how) and the
journal's event (the SEG's UID, its series and cohorts) are written in one transaction; when that transaction
fails, the SEG is removed from Orthanc again, so no SEG exists without its record. Removal is the reverse, with
its own event. The MONAI Label datastore receives the store from the app (``apps/awesomme/main.py``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from pydicom import Dataset
from sqlalchemy import delete

from awesomme.core import audit
from awesomme.core.db import session_scope
from awesomme.core.errors import Conflict, NotFound
from awesomme.core.visibility import cohorts_of_series
from awesomme.dicom.segmentation_files import SourceFile
from awesomme.models import Segmentation, SegmentationOperation, SegmentationOrigin, SegmentationReview
from awesomme.orthanc.cache import SeriesCache
from awesomme.orthanc.client import OrthancClient
from awesomme.orthanc.visible import forget_series

__all__ = ["ACTIONS", "SegStore", "cohort_text"]

logger = logging.getLogger(__name__)


# The journal's action for each way a SEG comes to be.
ACTIONS = {
    SegmentationOperation.INFERENCE: "inference",
    SegmentationOperation.LABEL: "label.save",
    SegmentationOperation.IMPORT: "segmentation.import",
    SegmentationOperation.INTERPOLATION: "segmentation.interpolate",
}
DELETE_ACTION = "segmentation.delete"


def cohort_text(cohorts: set[int]) -> str:
    """Cohort ids as the journal keeps them."""
    return ",".join(str(cohort) for cohort in sorted(cohorts))


class SegStore:
    def __init__(self, client: OrthancClient, cache: SeriesCache) -> None:
        self.client = client
        self.cache = cache

    def store(
        self,
        seg: Dataset,
        record: Segmentation,
        operation: str,
        *,
        params: Mapping[str, Any] | None = None,
        source_file: SourceFile | None = None,
    ) -> str:
        """Store ``seg`` and its ``record``, made by ``operation`` (a ``SegmentationOperation``); the journal's event
        names the SEG, its series and its cohorts."""
        action = ACTIONS[operation]
        seg_uid = str(seg.SeriesInstanceUID)
        with session_scope() as session:  # the clean-up below would otherwise remove the SEG already recorded
            if session.get(Segmentation, seg_uid) is not None:
                raise Conflict(f"SEG {seg_uid} is stored already")
        self.client.store([seg])
        record.seg_series_uid, record.seg_sop_uid = seg_uid, str(seg.SOPInstanceUID)
        record.created_by = audit.acting_user()  # the login, whatever a writer or its client said
        origin = SegmentationOrigin(
            seg_series_uid=seg_uid,
            created_by=record.created_by,
            operation=operation,
            source_format=source_file.format if source_file else None,
            source_name=source_file.name[:256] if source_file else None,
            source_sha256=source_file.sha256 if source_file else None,
        )
        try:
            with session_scope() as session:
                session.add_all([record, origin])
                session.flush()
                cohorts = cohorts_of_series(session, record.study_uid, record.source_series_uid)
                audit.record(
                    session,
                    action,
                    target=seg_uid,
                    cohort=cohort_text(cohorts),
                    params={
                        "series_uid": record.source_series_uid,
                        "role": record.role,
                        "tag": record.tag,
                        "segments": len(record.segments or []),
                        **({"reader": record.reader} if record.reader else {}),
                        **(params or {}),
                    },
                )
        except Exception:
            with contextlib.suppress(Exception):  # nothing half-written: no SEG in Orthanc without its record
                self.client.delete_series(seg_uid)
            raise
        logger.info("Stored %s SEG %s of series %s", operation, seg_uid, record.source_series_uid)
        return seg_uid

    def remove(self, record: Segmentation, *, params: Mapping[str, Any] | None = None) -> None:
        """Remove a SEG from Orthanc and its records from the database, journaled with its cohorts."""
        seg_uid = record.seg_series_uid
        with contextlib.suppress(NotFound):  # already gone from Orthanc: drop the records all the same
            self.client.delete_series(seg_uid)
        forget_series(seg_uid)
        with session_scope() as session:
            cohorts = cohorts_of_series(session, record.study_uid, record.source_series_uid)
            for table in (SegmentationReview, SegmentationOrigin, Segmentation):
                session.execute(delete(table).where(table.seg_series_uid == seg_uid))
            audit.record(
                session,
                DELETE_ACTION,
                target=seg_uid,
                cohort=cohort_text(cohorts),
                params={"series_uid": record.source_series_uid, "role": record.role, **(params or {})},
            )
        self.cache.invalidate(seg_uid)
        logger.info("Removed SEG %s of series %s", seg_uid, record.source_series_uid)
