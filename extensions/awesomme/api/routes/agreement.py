"""`/api/agreement`: inter-expert agreement on segmentations and scores."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["agreement"])
