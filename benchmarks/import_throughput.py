"""DICOM import throughput (instances per second) with de-identification against a bare STOW of the same files, in the
same run.

Starts Orthanc and the platform on free loopback ports in a temporary directory and writes ``--patients`` chest CT
phantoms of ``--shape`` (500 instances by default). Then, alternating which goes first, ``--repeats`` times each:

- bare STOW: ``POST /dicom-web/studies`` of every file in one request, as a platform admin without a cohort (stored
  as sent: the platform's strict read, re-encoding, store and verification);
- import: ``POST /api/imports`` (kind ``dicom``) of the same files into a new de-identifying cohort (Basic Profile),
  timed from the request to the job's ``finished_at``.

Orthanc's storage is emptied before each run, so every run stores all its instances. Prints instances/s, the ratio
of the medians import / STOW (target: at most 1.3) and each repeat's own ratio, and writes
``benchmarks/results/import_throughput.json``. ``--profile FILE`` also runs one import in this process under cProfile
and writes its statistics to FILE.

    .venv/bin/python benchmarks/import_throughput.py [--patients 5] [--shape 100x256x256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform as host
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # `benchmarks.*` when run as a script

import httpx  # noqa: E402

from benchmarks.stack import ADMIN, Platform, platform  # noqa: E402

RESULTS = REPO_ROOT / "benchmarks" / "results" / "import_throughput.json"
TARGET_RATIO = 1.3


def write_files(patients: int, shape: tuple[int, int, int], scratch: Path) -> list[tuple[str, bytes]]:
    from awesomme.phantoms import generate_patient

    files: list[tuple[str, bytes]] = []
    for seed in range(patients):
        patient = generate_patient("chest-ct", 8100 + seed, scratch / str(seed), shape=shape)
        files += [(f"{seed}-{path.name}", path.read_bytes()) for path in patient.dicom_files]
    return files


def multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = "import-bench-boundary-7f3a"
    chunks = []
    for _, data in files:
        chunks.append(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + data + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f'multipart/related; type="application/dicom"; boundary={boundary}'


def bare_stow(ours: Platform, headers: dict[str, str], files: list[tuple[str, bytes]]) -> float:
    body, content_type = multipart(files)
    start = time.perf_counter()
    reply = httpx.post(
        f"{ours.url}/dicom-web/studies", content=body, headers={**headers, "Content-Type": content_type}, timeout=900
    )
    elapsed = time.perf_counter() - start
    if reply.status_code != 200:
        raise RuntimeError(f"STOW answered {reply.status_code}: {reply.text[:300]}")
    return elapsed


def new_cohort(ours: Platform, headers: dict[str, str], name: str) -> int:
    reply = httpx.post(f"{ours.url}/api/cohorts", json={"name": name, "description": "benchmark"}, headers=headers)
    reply.raise_for_status()
    return int(reply.json()["id"])


def timed_import(
    ours: Platform, headers: dict[str, str], cohort: int, files: list[tuple[str, bytes]]
) -> tuple[float, float]:
    """(seconds to the job's end, seconds to the 202: upload, form parsing, the checks before the job starts)."""
    parts = [("files", (name, data, "application/dicom")) for name, data in files]
    posted = time.time()
    reply = httpx.post(
        f"{ours.url}/api/imports", data={"cohort": str(cohort), "kind": "dicom"}, files=parts, headers=headers,
        timeout=900,
    )  # fmt: skip
    if reply.status_code != 202:
        raise RuntimeError(f"POST /api/imports answered {reply.status_code}: {reply.text[:300]}")
    accepted = time.time() - posted
    job_id = reply.json()["id"]
    while True:
        report = httpx.get(f"{ours.url}/api/imports/{job_id}", headers=headers, timeout=60).json()
        if report["status"] != "running":
            break
        time.sleep(0.05)
    refused = [item["error"] for item in report["items"] if item.get("error")]
    stored = sum(item.get("instances", 0) for item in report["items"] if item.get("status") == "stored")
    if report["status"] != "done" or refused or stored != len(files):
        raise RuntimeError(f"import {job_id}: {report['status']} {report['error']} {refused[:3]} stored {stored}")
    return datetime.fromisoformat(report["finished_at"]).timestamp() - posted, accepted


def profile_in_process(ours: Platform, cohort: int, files: list[tuple[str, bytes]], out: Path) -> float:
    """One import run in this process (the server's code, not its HTTP) under cProfile."""
    import cProfile
    import pstats

    from awesomme.core.db import session_scope
    from awesomme.core.visibility import load_principal
    from awesomme.intake.archive import UploadedFile
    from awesomme.models import ImportJob, User
    from awesomme.services import imports

    with session_scope() as session:
        user = session.query(User).filter(User.username == ADMIN[0]).one()
        principal = load_principal(session, user)
    profiler = cProfile.Profile()
    original = imports._run_dicom

    def profiled(*args: Any, **kwargs: Any) -> None:
        profiler.runcall(original, *args, **kwargs)

    imports._run_dicom = profiled
    try:
        start = time.perf_counter()
        uploads = [UploadedFile(name, data) for name, data in files]
        job_id = imports.start(principal, None, str(cohort), "dicom", uploads, None)
        while True:
            with session_scope() as session:
                job = session.get(ImportJob, job_id)
                if job is None or job.status != "running":
                    break
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
    finally:
        imports._run_dicom = original
    profiler.dump_stats(out)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=5)
    parser.add_argument("--shape", default="100x256x256")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--profile", type=Path, default=None)
    args = parser.parse_args()
    shape = tuple(int(part) for part in args.shape.split("x"))
    assert len(shape) == 3
    results: dict[str, Any] = {
        "machine": {"cpu": host.processor() or host.machine(), "cores": os.cpu_count(), "load": os.getloadavg()},
        "patients": args.patients,
        "shape": args.shape,
        "repeats": args.repeats,
    }
    with tempfile.TemporaryDirectory(prefix="import-bench-") as scratch, platform(Path(scratch)) as ours:
        from awesomme.core.config import get_settings
        from awesomme.core.db import session_scope
        from awesomme.services import identity

        with session_scope() as session:
            identity.create_user(session, get_settings(), ADMIN[0], ADMIN[1], admin=True)
        files = write_files(args.patients, shape, Path(scratch))
        results["instances"] = len(files)
        results["megabytes"] = round(sum(len(data) for _, data in files) / 1e6, 1)
        headers = ours.headers()
        stow_s: list[float] = []
        import_s: list[float] = []
        accepted_s: list[float] = []
        for repeat in range(args.repeats):
            order = ("stow", "import") if repeat % 2 == 0 else ("import", "stow")
            for side in order:
                clear_orthanc(ours)
                if side == "stow":
                    stow_s.append(bare_stow(ours, headers, files))
                else:
                    done, accepted = timed_import(ours, headers, new_cohort(ours, headers, f"bench-{repeat}"), files)
                    import_s.append(done)
                    accepted_s.append(accepted)
            print(f"repeat {repeat}: stow {stow_s[-1]:.2f} s, import {import_s[-1]:.2f} s", flush=True)
        stow_median, import_median = statistics.median(stow_s), statistics.median(import_s)
        results["bare_stow_s"] = [round(value, 3) for value in stow_s]
        results["import_s"] = [round(value, 3) for value in import_s]
        results["import_accepted_s"] = [round(value, 3) for value in accepted_s]
        results["bare_stow_instances_per_s"] = round(len(files) / stow_median, 1)
        results["import_instances_per_s"] = round(len(files) / import_median, 1)
        results["ratio_import_vs_stow"] = round(import_median / stow_median, 3)
        # Each repeat's own ratio: the two sides of one repeat meet about the same machine load.
        results["ratio_per_repeat"] = [round(i / b, 3) for i, b in zip(import_s, stow_s, strict=True)]
        results["target_ratio"] = TARGET_RATIO
        results["meets_target"] = results["ratio_import_vs_stow"] <= TARGET_RATIO
        if args.profile:
            clear_orthanc(ours)
            results["profiled_import_s"] = round(
                profile_in_process(ours, new_cohort(ours, headers, "bench-profile"), files, args.profile), 3
            )
    results["machine"]["load_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "machine"}, indent=2))
    return 0


def clear_orthanc(ours: Platform) -> None:
    """Every patient deleted from Orthanc (the platform's database keeps its cohorts: new ones each run)."""
    auth = (ours.settings.orthanc_username, ours.settings.orthanc_password)
    with httpx.Client(base_url=ours.settings.orthanc_url, auth=auth, timeout=120) as orthanc:
        for patient in orthanc.get("/patients").json():
            orthanc.delete(f"/patients/{patient}").raise_for_status()


if __name__ == "__main__":
    raise SystemExit(main())
