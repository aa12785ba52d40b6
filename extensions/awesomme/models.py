"""Tables of the platform database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base", "Segmentation", "SegmentationRole"]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class SegmentationRole:
    """A SEG saved as a label (final or imported manual work) trains models; a model's output is a prediction."""

    LABEL = "label"
    PREDICTION = "prediction"


class Segmentation(Base):
    __tablename__ = "segmentations"

    seg_series_uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    seg_sop_uid: Mapped[str] = mapped_column(String(64))
    source_series_uid: Mapped[str] = mapped_column(String(64))
    study_uid: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    tag: Mapped[str] = mapped_column(String(64))
    author: Mapped[str | None] = mapped_column(String(128))
    algorithm_type: Mapped[str] = mapped_column(String(16), default="MANUAL")
    model_name: Mapped[str | None] = mapped_column(String(64))
    model_version: Mapped[str | None] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(String(256))
    # [{"number": 1, "label": "tumour", "volume_ml": 12.3}, ...]
    segments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The prediction a label corrects (SEMIAUTOMATIC), when there is one.
    derived_from: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)

    __table_args__ = (Index("ix_segmentations_source", "source_series_uid", "role", "tag"),)
