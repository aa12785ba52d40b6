"""Which MONAI Label jobs a caller may list, and what of them: ``api/routes/jobs.py`` without a server."""

from __future__ import annotations

from collections import deque

from awesomme.api.routes.jobs import job_visible_to, redacted
from awesomme.core.visibility import JOB_COHORTS_FIELD, Principal

ALPHA_ADMIN = Principal(2, "alpha.admin", False, {1: "admin", 3: "member"})
ROOT = Principal(1, "root", True)


def _job(cohorts: list[int] | None) -> dict[str, object]:
    request = {"model": "m", JOB_COHORTS_FIELD: cohorts, "bundle_path": "/srv/app/model"}
    details = deque(["Infer Request: {'image': '/var/awesomme/cache/series/1.2.3.nii.gz'}", "done"])
    return {"id": "j", "status": "DONE", "request": request, "details": details}


def test_a_cohort_admin_lists_only_jobs_of_cohorts_they_administer() -> None:
    assert job_visible_to(_job([1]), ALPHA_ADMIN)
    assert not job_visible_to(_job([1, 2]), ALPHA_ADMIN)  # one cohort not theirs: hidden
    assert not job_visible_to(_job([3]), ALPHA_ADMIN)  # a member there, not an admin
    assert not job_visible_to(_job(None), ALPHA_ADMIN)  # the platform's own jobs (all data)
    assert all(job_visible_to(_job(cohorts), ROOT) for cohorts in ([1], [2], None))


def test_job_listings_carry_no_server_paths_for_cohort_admins() -> None:
    shown = redacted(_job([1]), ALPHA_ADMIN)
    assert "bundle_path" not in shown["request"]
    assert shown["details"] == ["Infer Request: {'image': '<path>'}", "done"]
    assert redacted(_job([1]), ROOT)["request"]["bundle_path"] == "/srv/app/model"  # platform admins: as kept
