"""``GET /train/``, ``GET /scoring/``, ``GET /batch/infer``: MONAI Label's job listings, per caller.

MONAI Label lists every job with its request and its last log lines to anyone who may ask; those name the
series a job read and paths on the server. Here a cohort admin sees only the jobs started for cohorts they
administer (the access table puts a job's cohorts in its request), with paths taken out; platform admins see
every job as MONAI Label keeps it. Same paths, parameters and answers as MONAI Label's routes, which these replace.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query
from monailabel.endpoints import batch_infer as monailabel_batch_infer
from monailabel.endpoints import scoring as monailabel_scoring
from monailabel.endpoints import train as monailabel_train
from monailabel.utils.async_tasks.utils import processes, tasks

from awesomme.api.deps import CurrentPrincipal
from awesomme.core.errors import NotFound
from awesomme.core.visibility import JOB_COHORTS_FIELD, Principal

__all__ = ["job_visible_to", "redacted", "replace_monailabel_listings", "router"]

router = APIRouter(tags=["Jobs"])
# An absolute path of two or more parts (a cache file, the app's folder, a temporary file).
_PATH = re.compile(r"(?:[A-Za-z]:)?(?:/[^\s'\",;:()\[\]{}]+){2,}")
_SERVER_ONLY = ("bundle_path",)
_LISTINGS = ("/train/", "/scoring/", "/batch/infer")  # paths as MONAI Label's routers hold them (with prefix)


def job_visible_to(job: dict[str, Any], principal: Principal) -> bool:
    """Platform admins see every job; a cohort admin, the jobs all of whose cohorts they administer."""
    if principal.platform_admin:
        return True
    request = job.get("request")
    cohorts = request.get(JOB_COHORTS_FIELD) if isinstance(request, dict) else None
    if not isinstance(cohorts, list) or not cohorts:
        return False  # the platform's own jobs, or a platform admin's: on all data
    return {int(cohort) for cohort in cohorts} <= principal.administered


def _without_paths(value: Any) -> Any:
    if isinstance(value, str):
        return _PATH.sub("<path>", value)
    if isinstance(value, dict):
        return {key: _without_paths(item) for key, item in value.items() if key not in _SERVER_ONLY}
    if isinstance(value, list | tuple):
        return [_without_paths(item) for item in value]
    return value


def redacted(job: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """The job as ``principal`` may read it: a copy (MONAI Label keeps writing to its own)."""
    copy = {key: list(value) if key == "details" else value for key, value in dict(job).items()}
    return copy if principal.platform_admin else _without_paths(copy)


def _status(method: str, principal: Principal, all_jobs: bool, check_if_running: bool) -> Any:
    """MONAI Label's ``AsyncTask.status``, on the jobs the caller may see."""
    title = method.replace("_", " ").capitalize()
    visible = [job for job in list(tasks(method)) if job_visible_to(job, principal)]
    if check_if_running:
        running = [job for job in visible if job.get("id") in processes(method)]
        if not running:
            raise NotFound(f"No {title} Tasks are currently Running")
        return redacted(running[0], principal)
    if not visible:
        raise NotFound(f"No {title} Tasks Found")
    if all_jobs:
        return [redacted(job, principal) for job in visible]
    return redacted(visible[-1], principal)


AllJobs = Annotated[bool, Query(alias="all", description="every job, not only the latest")]


@router.get("/train/", summary="Training jobs of the cohorts you administer (all of them: platform admins)")
def train_status(principal: CurrentPrincipal, all_jobs: AllJobs = False, check_if_running: bool = False) -> Any:
    return _status("train", principal, all_jobs, check_if_running)


@router.get("/scoring/", summary="Scoring jobs of the cohorts you administer (all of them: platform admins)")
def scoring_status(principal: CurrentPrincipal, all_jobs: AllJobs = False, check_if_running: bool = False) -> Any:
    return _status("scoring", principal, all_jobs, check_if_running)


@router.get("/batch/infer", summary="Batch inference jobs of the cohorts you administer (all: platform admins)")
def batch_infer_status(principal: CurrentPrincipal, all_jobs: AllJobs = False, check_if_running: bool = False) -> Any:
    return _status("batch_infer", principal, all_jobs, check_if_running)


def replace_monailabel_listings() -> None:
    """Take MONAI Label's GET job listings out of its routers (its other job routes stay): ours answer instead."""
    for router_of_monailabel in (monailabel_train.router, monailabel_scoring.router, monailabel_batch_infer.router):
        kept = [route for route in router_of_monailabel.routes if not _is_listing(route)]
        if len(kept) != len(router_of_monailabel.routes):
            router_of_monailabel.routes[:] = kept
            getattr(router_of_monailabel, "_mark_routes_changed", lambda: None)()  # FastAPI caches included routes


def _is_listing(route: Any) -> bool:
    return getattr(route, "methods", None) == {"GET"} and getattr(route, "path", None) in _LISTINGS
