"""Cohort batch throughput (series per minute) on Dask worker processes against the same work one request at a time
through the API, in the same run.

Starts Orthanc and the platform on free loopback ports in a temporary directory, stores ``--series`` osteosarcoma MR
phantoms in one cohort, then for 1 and 2 worker processes (the server restarted with ``AWESOMME_DASK_WORKERS``):
a segmentation batch (the shipped ``osteosarcoma_mr``) and a radiomics batch (preset ``osteosarcoma-mr``) on the
SEGs it stored. The first item of each batch meets cold workers (imports, model loading) and is reported apart from
the rest (warm). Baseline: the same series one at a time, ``POST /infer/osteosarcoma_mr`` then ``POST /api/radiomics``.
Prints the ratios and writes ``benchmarks/results/batch_throughput.json``.

    .venv/bin/python benchmarks/batch_throughput.py [--series 6] [--shape 16x256x256]
"""

from __future__ import annotations

import argparse
import json
import os
import platform as host
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # `benchmarks.*` when run as a script

import httpx  # noqa: E402
import pydicom  # noqa: E402

from benchmarks.stack import ADMIN, Platform, platform  # noqa: E402

MODEL = "osteosarcoma_mr"
PRESET = "osteosarcoma-mr"
COHORT = "batch-bench"
RESULTS = REPO_ROOT / "benchmarks" / "results" / "batch_throughput.json"


def restart_with_workers(ours: Platform, workers: int) -> None:
    from awesomme.runtime.platform import start_server, stop_server

    os.environ["AWESOMME_DASK_WORKERS"] = str(workers)
    stop_server(ours.settings)
    start_server(ours.settings)


def prepare(ours: Platform, count: int, shape: tuple[int, int, int], scratch: Path) -> tuple[int, list[str]]:
    """The admin, the cohort (the model bound to it) and ``count`` MR series in it."""
    from awesomme.core.config import get_settings
    from awesomme.core.db import session_scope
    from awesomme.orthanc.client import OrthancClient
    from awesomme.phantoms import generate_patient
    from awesomme.services import identity

    with session_scope() as session:
        identity.create_user(session, get_settings(), ADMIN[0], ADMIN[1], admin=True)
    headers = ours.headers()
    reply = httpx.post(f"{ours.url}/api/cohorts", json={"name": COHORT, "description": "benchmark"}, headers=headers)
    reply.raise_for_status()
    cohort = int(reply.json()["id"])
    httpx.put(f"{ours.url}/api/models/{MODEL}/cohorts", json={"cohorts": [COHORT]}, headers=headers).raise_for_status()
    client = OrthancClient(ours.settings)
    series, studies = [], []
    for seed in range(count):
        patient = generate_patient("osteosarcoma-mr", 7000 + seed, scratch / str(seed), shape=shape)
        client.store([pydicom.dcmread(path) for path in patient.dicom_files])
        series.append(patient.series_uid)
        studies.append(patient.study_uid)
    url = f"{ours.url}/api/cohorts/{cohort}/studies"
    httpx.post(url, json={"study_uids": studies}, headers=headers, timeout=60).raise_for_status()
    return cohort, series


def _time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def run_batch(ours: Platform, body: dict[str, Any]) -> dict[str, Any]:
    """Start a batch and wait for it: wall time, the first item (cold) and the rest (warm) apart."""
    headers = ours.headers()
    posted = time.time()
    reply = httpx.post(f"{ours.url}/api/batches", json=body, headers=headers, timeout=120)
    if reply.status_code != 202:
        raise RuntimeError(f"POST /api/batches answered {reply.status_code}: {reply.text[:500]}")
    batch_id = reply.json()["id"]
    while True:
        status = httpx.get(f"{ours.url}/api/batches/{batch_id}", headers=headers, timeout=60).json()
        if status["status"] in ("done", "cancelled"):
            break
        time.sleep(0.5)
    items = httpx.get(f"{ours.url}/api/batches/{batch_id}/items", headers=headers, timeout=60).json()
    if status["counts"]["failed"]:
        raise RuntimeError(f"batch {batch_id} failed items: {[item['error'] for item in items if item['error']]}")
    finished = sorted(_time(item["updated"]) for item in items)
    wall = finished[-1] - posted
    warm = finished[-1] - finished[0]
    return {
        "series": len(items),
        "wall_s": round(wall, 2),
        "cold_first_item_s": round(finished[0] - posted, 2),
        "warm_s": round(warm, 2),
        "series_per_min": round(60 * len(items) / wall, 2),
        "warm_series_per_min": round(60 * (len(items) - 1) / warm, 2) if warm > 0 else None,
    }


def one_at_a_time(ours: Platform, series: list[str]) -> dict[str, Any]:
    """The baseline: each series segmented, then its features extracted, one request at a time."""
    headers = ours.headers()
    timings: dict[str, list[float]] = {"segmentation": [], "radiomics": []}
    with httpx.Client(base_url=ours.url, headers=headers, timeout=900) as client:
        for uid in series:
            start = time.perf_counter()
            reply = client.post(f"/infer/{MODEL}", params={"image": uid, "output": "json"})
            if reply.status_code != 200:
                raise RuntimeError(f"/infer answered {reply.status_code}: {reply.text[:300]}")
            timings["segmentation"].append(time.perf_counter() - start)
            segs = client.get("/api/segmentations", params={"series_uid": uid}).json()
            seg_uid = next(s["seg_uid"] for s in segs if s.get("role") == "prediction")
            start = time.perf_counter()
            body = {"series_uid": uid, "seg_uid": seg_uid, "preset": PRESET, "tag": "baseline"}
            reply = client.post("/api/radiomics", json=body)
            if reply.status_code != 201:
                raise RuntimeError(f"/api/radiomics answered {reply.status_code}: {reply.text[:300]}")
            timings["radiomics"].append(time.perf_counter() - start)
    return {
        kind: {"wall_s": round(sum(values), 2), "series_per_min": round(60 * len(values) / sum(values), 2)}
        for kind, values in timings.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=6)
    parser.add_argument("--shape", default="16x256x256")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    shape = tuple(int(part) for part in args.shape.split("x"))
    assert len(shape) == 3
    results: dict[str, Any] = {
        "machine": {"cpu": host.processor() or host.machine(), "cores": os.cpu_count(), "load": os.getloadavg()},
        "series": args.series,
        "shape": args.shape,
    }
    one_worker = {"AWESOMME_DASK_WORKERS": "1"}
    with tempfile.TemporaryDirectory(prefix="batch-bench-") as scratch, platform(Path(scratch), one_worker) as ours:
        cohort, series = prepare(ours, args.series, shape, Path(scratch))
        results["baseline_one_request_at_a_time"] = one_at_a_time(ours, series)
        print("baseline:", results["baseline_one_request_at_a_time"], flush=True)
        for workers in (1, 2):
            restart_with_workers(ours, workers)
            tag = f"w{workers}"
            segmentation = {"cohort": cohort, "kind": "segmentation", "model": MODEL, "description": tag, "tag": tag}
            radiomics = {
                "cohort": cohort,
                "kind": "radiomics",
                "preset": PRESET,
                "seg": {"description": tag},
                "tag": tag,
            }
            results[f"workers_{workers}"] = {
                "segmentation": run_batch(ours, segmentation),
                "radiomics": run_batch(ours, radiomics),
            }
            print(f"{workers} worker(s):", results[f"workers_{workers}"], flush=True)
    baseline = results["baseline_one_request_at_a_time"]
    for kind in ("segmentation", "radiomics"):
        one, two = results["workers_1"][kind], results["workers_2"][kind]
        results[f"{kind}_ratio_two_vs_one_workers"] = round(two["series_per_min"] / one["series_per_min"], 2)
        results[f"{kind}_ratio_two_workers_vs_baseline"] = round(
            two["series_per_min"] / baseline[kind]["series_per_min"], 2
        )
    results["machine"]["load_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({key: value for key, value in results.items() if "ratio" in key}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
