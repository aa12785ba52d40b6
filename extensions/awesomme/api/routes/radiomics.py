"""`/api/radiomics`: feature extraction, presets, feature sets and their provenance."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["radiomics"])
