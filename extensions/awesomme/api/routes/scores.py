"""`/api/score-types` and `/api/scores`: experts' scores of studies, series and derived objects."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["scores"])
