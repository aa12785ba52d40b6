"""`/api/classification` and `/api/predictions`: computer-aided diagnosis and prognosis."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["classification"])
