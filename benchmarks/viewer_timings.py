"""The AWESOMME viewer in headless Chromium on this machine: opening a study to its first image, and pressing Run for
``osteosarcoma_mr`` on a demo MR study to its SEG overlaid, median of ``--repeats`` (each on a study never opened).

The baseline is the paper's: its whole automatic segmentation request took 19 s (``reference/awesomme-paper.txt``,
Table 3); the ratios printed are 19 s over each median. Targets: first image under 1.5 s, click to overlay under 2 s.

What it starts, on free loopback ports in a temporary directory removed at the end: Orthanc and our platform (the
server as ``make run`` starts it) with the shipped models, the installed viewer (``make viewer``) and the built
plugin; a platform admin makes one cohort, binds ``osteosarcoma_mr`` to it, and the timed user is a plain member who
logs in through ``/login`` once. One untimed study warms the browser's cache and the model first.

    .venv/bin/python benchmarks/viewer_timings.py    # median of 5; writes benchmarks/results/viewer_timings.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pydicom

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `benchmarks.*` when run as a script
from benchmarks.stack import platform
from tests.integration.test_viewer_browser import CHROMIUM, CHROMIUM_FLAGS  # the browser tests' Chromium

RESULTS = Path(__file__).resolve().parent / "results" / "viewer_timings.json"
MODEL = "osteosarcoma_mr"
COHORT = "viewer-bench"
PAPER_REQUEST_S = 19.0  # the paper's one automatic segmentation request (Table 3)
TARGETS_S = {"first_image_s": 1.5, "run_to_overlay_s": 2.0}
PEOPLE = {"bench.admin": "bench-admin-password-1", "bench.member": "bench-member-password-1"}
TIMEOUT_MS = 120_000

# The active viewport has drawn an image (cornerstone's viewport status after a render).
_FIRST_IMAGE = """() => {
  try {
    const { cornerstone } = window.extensionManager
      .getModuleEntry('@ohif/extension-cornerstone.utilityModule.common').exports.getCornerstoneLibraries();
    return cornerstone.getRenderingEngines().some(engine => engine.getViewports().some(
      viewport => viewport.viewportStatus === 'rendered' && viewport.getCurrentImageId?.()));
  } catch {
    return false;
  }
}"""
# The active viewport shows a segmentation, and the pending SEG (the run's) has been overlaid.
_OVERLAY = """() => {
  try {
    const { viewportGridService, segmentationService } = window.services;
    const shown = segmentationService.getSegmentationRepresentations(viewportGridService.getActiveViewportId()) ?? [];
    return shown.length > 0 && !sessionStorage.getItem('awesomme.loadAfterReload');
  } catch {
    return false;
  }
}"""


def _headers(url: str, username: str) -> dict[str, str]:
    form = {"grant_type": "password", "username": username, "password": PEOPLE[username]}
    reply = httpx.post(f"{url}/api/auth/token", data=form, timeout=60)
    reply.raise_for_status()
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


def prepare(
    url: str, settings: Any, count: int, scratch: Path, shape: tuple[int, int, int] | None
) -> tuple[list[str], str]:
    """Accounts, the cohort with ``osteosarcoma_mr`` bound to it, ``count`` demo MR studies in it, and their size."""
    from awesomme.core.db import session_scope
    from awesomme.orthanc.client import OrthancClient
    from awesomme.phantoms import generate_patient
    from awesomme.services import identity

    with session_scope() as session:
        for name, password in PEOPLE.items():
            identity.create_user(session, settings, name, password, admin=name == "bench.admin")
    admin = _headers(url, "bench.admin")
    reply = httpx.post(f"{url}/api/cohorts", json={"name": COHORT, "description": "viewer timings"}, headers=admin)
    reply.raise_for_status()
    cohort = reply.json()["id"]
    reply = httpx.put(f"{url}/api/cohorts/{cohort}/members/bench.member", json={"role": "member"}, headers=admin)
    reply.raise_for_status()
    reply = httpx.put(f"{url}/api/models/{MODEL}/cohorts", json={"cohorts": [COHORT]}, headers=admin)
    reply.raise_for_status()
    orthanc = OrthancClient(settings)
    studies, size = [], ""
    for seed in range(count):
        patient = generate_patient("osteosarcoma-mr", 900 + seed, scratch / str(seed), shape=shape)
        datasets = [pydicom.dcmread(path) for path in patient.dicom_files]
        orthanc.store(datasets)
        studies.append(patient.study_uid)
        size = f"{len(datasets)}x{datasets[0].Rows}x{datasets[0].Columns}"
    reply = httpx.post(f"{url}/api/cohorts/{cohort}/studies", json={"study_uids": studies}, headers=admin, timeout=120)
    reply.raise_for_status()
    return studies, size


def measure(url: str, studies: list[str]) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    first_image: list[float] = []
    overlay: list[float] = []
    answered: list[float] = []  # of each click to overlay: until the server answered the run (SEG stored)
    marks: dict[str, float] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
        try:
            context = browser.new_context(base_url=url, viewport={"width": 1400, "height": 900})
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            page.on("response", lambda response: _mark(marks, response.url))
            page.goto("/viewer/")
            page.fill("#username", "bench.member")
            page.fill("#password", PEOPLE["bench.member"])
            page.click("button[type=submit]")
            page.wait_for_url("**/viewer/**")
            for index, study in enumerate(studies):
                started = time.perf_counter()
                page.goto(f"/viewer/awesomme?StudyInstanceUIDs={study}")
                page.wait_for_function(_FIRST_IMAGE, polling="raf")
                opened = time.perf_counter() - started
                run = page.locator(f'[data-cy="awesomme-run-{MODEL}"]')
                run.wait_for(state="visible")
                page.wait_for_function(  # the button is enabled once the panel has listed the series' models
                    f"() => !document.querySelector('[data-cy=\"awesomme-run-{MODEL}\"]')?.disabled"
                )
                started = time.perf_counter()
                run.click()
                page.wait_for_function(_OVERLAY, polling="raf")
                shown = time.perf_counter() - started
                inferred = marks.pop("infer", started) - started
                warm_up = index == 0
                print(
                    f"{'warm-up' if warm_up else 'study'} {index}: first image {opened:.2f} s, "
                    f"overlay {shown:.2f} s (run answered after {inferred:.2f} s)"
                )
                if not warm_up:
                    first_image.append(opened)
                    overlay.append(shown)
                    answered.append(inferred)
        finally:
            browser.close()
    return {"first_image_s": first_image, "run_to_overlay_s": overlay, "run_answered_s": answered}


def _mark(marks: dict[str, float], url: str) -> None:
    if f"/infer/{MODEL}" in url:
        marks["infer"] = time.perf_counter()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed studies (median); one more warms up")
    parser.add_argument("--shape", help="SLICESxROWSxCOLS of the MR phantoms (default: the demo's)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    shape = tuple(int(part) for part in args.shape.split("x")) if args.shape else None
    if not CHROMIUM.is_file():
        raise SystemExit(f"{CHROMIUM} is missing: install Debian's chromium (scripts/install-system-deps.sh does)")

    load_at_start = [round(value, 2) for value in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="awesomme-viewer-bench-") as directory:
        work = Path(directory)
        with platform(work) as ours:
            settings = ours.settings
            if not (settings.viewer_dist_dir / "index.html").is_file():
                raise SystemExit("the viewer is not installed: run `make viewer` first")
            from awesomme.runtime.platform import base_url

            url = base_url(settings)
            studies, size = prepare(url, settings, args.repeats + 1, work / "phantoms", shape)  # type: ignore[arg-type]
            samples = measure(url, studies)

    report: dict[str, Any] = {
        "baseline": f"the paper's whole automatic segmentation request, {PAPER_REQUEST_S} s",
        "repeats": args.repeats,
        "series": f"osteosarcoma-mr demo phantom, slices x rows x columns {size}",
        "load_average": {"start": load_at_start, "end": [round(value, 2) for value in os.getloadavg()]},
    }
    print(f"{'':18s} {'median':>8s} {'target':>8s} {'paper 19 s / median':>20s}")
    answered = samples.pop("run_answered_s")
    report["run_answered_s"] = {"median": round(statistics.median(answered), 3), "samples": answered}
    for name, values in samples.items():
        median = statistics.median(values)
        report[name] = {
            "median": round(median, 3),
            "samples": [round(value, 3) for value in values],
            "target": TARGETS_S[name],
            "meets_target": median < TARGETS_S[name],
            "ratio_vs_paper": round(PAPER_REQUEST_S / median, 1),
        }
        print(f"{name:18s} {median:7.2f}s {TARGETS_S[name]:7.1f}s {PAPER_REQUEST_S / median:19.1f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"of click to overlay, the server's answer to the run (SEG stored): {statistics.median(answered):.2f} s")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run the clean-ups on a polite stop too
    sys.exit(main())
