"""Radiomics extraction through the API against bare PyRadiomics on the same images, in the same run.

Starts Orthanc and the platform on free loopback ports in a temporary directory, stores an osteosarcoma MR phantom of
each shape with its tumour as a SEG, warms the series cache with one extraction, then times
``POST /api/radiomics`` (preset ``osteosarcoma-mr``: original + LoG + wavelet) end to end, interleaved with bare
PyRadiomics (``RadiomicsFeatureExtractor(parameters).execute(image, mask)``) on the same in-memory images (decoded
here from the very DICOM files stored) with the same parameters; the median of ``--repeats`` each. Checks that both
give the same features, prints the ratios and writes ``benchmarks/results/radiomics_overhead.json``.

    .venv/bin/python benchmarks/radiomics_overhead.py [--shapes 16x512x512 60x352x352] [--repeats 5]
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # `benchmarks.*` when run as a script

import httpx  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pydicom  # noqa: E402
from radiomics import featureextractor  # noqa: E402

from benchmarks.processes import free_port, peak_rss_mb, reset_peak_rss  # noqa: E402

SHAPES = ((16, 512, 512), (60, 352, 352))
PRESET = "osteosarcoma-mr"
COHORT = "radiomics-bench"
SEED = 4242
TARGET_OVERHEAD = 0.10
RESULTS = REPO_ROOT / "benchmarks" / "results" / "radiomics_overhead.json"
ADMIN = ("bench.admin", "bench-admin-password-1")
MEMBER = ("bench.member", "bench-member-password-1")


@dataclass
class Platform:
    settings: Any
    url: str
    pid: int

    def headers(self, account: tuple[str, str]) -> dict[str, str]:
        form = {"grant_type": "password", "username": account[0], "password": account[1]}
        reply = httpx.post(f"{self.url}/api/auth/token", data=form, timeout=60)
        reply.raise_for_status()
        return {"Authorization": f"Bearer {reply.json()['access_token']}"}


@contextmanager
def platform(work: Path) -> Iterator[Platform]:
    """Orthanc, the migrated database and the server, as `awesomme up` starts them, in ``work``."""
    configs = work / "infer_configs"
    configs.mkdir()
    os.environ.update(
        {
            "AWESOMME_INFER_CONFIGS_DIR": str(configs),
            "AWESOMME_VAR_DIR": str(work / "var"),
            "AWESOMME_DATABASE_URL": "",
            "AWESOMME_PORT": str(free_port()),
            "AWESOMME_ORTHANC_URL": f"http://127.0.0.1:{free_port()}",
            "AWESOMME_CACHE_MAX_BYTES": str(2_000_000_000),
        }
    )
    from awesomme.core.config import load_settings
    from awesomme.core.db import forget_engine
    from awesomme.runtime.orthanc import ensure_secrets
    from awesomme.runtime.platform import base_url, start_all, stop_all

    ensure_secrets(load_settings())
    settings = load_settings()
    forget_engine()
    try:
        started = start_all(settings)
        yield Platform(settings, base_url(settings), started.server_pid)
    finally:
        stop_all(settings)


def accounts(ours: Platform) -> int:
    """A platform admin makes the cohort; the benchmark extracts as a plain member of it. Returns the cohort id."""
    from awesomme.core.config import get_settings
    from awesomme.core.db import session_scope
    from awesomme.services import identity

    with session_scope() as session:
        for name, password in (ADMIN, MEMBER):
            identity.create_user(session, get_settings(), name, password, admin=name == ADMIN[0])
    admin = ours.headers(ADMIN)
    reply = httpx.post(f"{ours.url}/api/cohorts", json={"name": COHORT, "description": "benchmark"}, headers=admin)
    reply.raise_for_status()
    cohort = int(reply.json()["id"])
    reply = httpx.put(f"{ours.url}/api/cohorts/{cohort}/members/{MEMBER[0]}", json={"role": "member"}, headers=admin)
    reply.raise_for_status()
    return cohort


@dataclass
class Case:
    label: str
    series_uid: str
    seg_uid: str
    image: Any  # SimpleITK images, decoded here from the DICOM files that were stored
    mask: Any
    tumour_voxels: int


def store_case(ours: Platform, cohort: int, shape: tuple[int, int, int], scratch: Path) -> Case:
    from awesomme.analysis.radiomics import image_from_array
    from awesomme.dicom.volumes import volume_from_datasets
    from awesomme.orthanc.client import OrthancClient
    from awesomme.phantoms import generate_patient

    label = "x".join(map(str, shape))
    patient = generate_patient("osteosarcoma-mr", SEED, scratch / label, shape=shape)
    datasets = [pydicom.dcmread(path) for path in patient.dicom_files]
    OrthancClient(ours.settings).store(datasets)
    admin = ours.headers(ADMIN)
    reply = httpx.post(
        f"{ours.url}/api/cohorts/{cohort}/studies", json={"study_uids": [patient.study_uid]}, headers=admin
    )
    reply.raise_for_status()
    truth = patient.truth["tumour"]
    reply = httpx.put(
        f"{ours.url}/datastore/label",
        params={"image": patient.series_uid, "tag": "final"},
        files={"label": (truth.name, truth.read_bytes())},
        data={"params": json.dumps({"label_info": [{"name": "tumour", "idx": 1}]})},
        headers=admin,
        timeout=300,
    )
    reply.raise_for_status()
    volume = volume_from_datasets(datasets)
    tumour = (np.asanyarray(nib.load(str(truth)).dataobj).transpose(2, 1, 0) > 0).astype(np.uint8)
    return Case(
        label,
        patient.series_uid,
        str(reply.json()["label"]),
        image_from_array(volume.array, volume.affine),
        image_from_array(tumour, volume.affine),
        int(tumour.sum()),
    )


def through_api(ours: Platform, case: Case) -> tuple[float, dict[str, Any]]:
    headers = ours.headers(MEMBER)  # a fresh token each time (outside the timing): a slow run outlives one
    body = {"series_uid": case.series_uid, "seg_uid": case.seg_uid, "preset": PRESET, "tag": "benchmark"}
    start = time.perf_counter()
    reply = httpx.post(f"{ours.url}/api/radiomics", json=body, headers=headers, timeout=900)
    seconds = time.perf_counter() - start
    if reply.status_code != 201:
        raise RuntimeError(f"POST /api/radiomics answered {reply.status_code}: {reply.text[:500]}")
    return seconds, reply.json()


def bare(case: Case, parameters: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    def run() -> dict[str, Any]:
        return dict(
            featureextractor.RadiomicsFeatureExtractor(json.loads(json.dumps(parameters))).execute(
                case.image, case.mask
            )
        )

    return run


def max_relative_difference(ours: dict[str, Any], theirs: dict[str, Any]) -> float:
    worst = 0.0
    for name, value in ours.items():
        reference = float(theirs[name])
        if value is None or not np.isfinite(reference):
            continue
        worst = max(worst, abs(float(value) - reference) / max(abs(reference), 1e-12))
    return worst


def measure(ours: Platform, cohort: int, shape: tuple[int, int, int], repeats: int, scratch: Path) -> dict[str, Any]:
    from awesomme.analysis.radiomics import builtin_preset

    case = store_case(ours, cohort, shape, scratch)
    parameters = builtin_preset(PRESET)
    run_bare = bare(case, parameters)
    warm_s, first = through_api(ours, case)  # fills the series and label caches
    print(f"  {case.label}: warm-up through the API {warm_s:.2f} s ({len(first['features'])} features)", flush=True)
    reset_peak_rss(ours.pid)
    api: list[float] = []
    inside: list[float] = []
    plain: list[float] = []
    answer = first
    for index in range(repeats):
        # Alternate who goes first, so neither always runs on a machine the other just warmed or loaded.
        for side in ("api", "bare") if index % 2 == 0 else ("bare", "api"):
            if side == "api":
                seconds, answer = through_api(ours, case)
                api.append(seconds)
                inside.append(float(answer["provenance"]["extraction_s"]))
            else:
                start = time.perf_counter()
                reference = run_bare()
                plain.append(time.perf_counter() - start)
        print(f"  {case.label} {index + 1}/{repeats}: api {api[-1]:.2f} s, bare {plain[-1]:.2f} s", flush=True)
    reference_features = {k: v for k, v in reference.items() if not k.startswith("diagnostics_")}
    assert set(reference_features) == set(answer["features"]), "the API and bare PyRadiomics differ in features"
    api_s, bare_s = statistics.median(api), statistics.median(plain)
    return {
        "shape": case.label,
        "features": len(answer["features"]),
        "tumour_voxels": case.tumour_voxels,
        "api_s": round(api_s, 3),
        "bare_pyradiomics_s": round(bare_s, 3),
        "ratio_api_over_bare": round(api_s / bare_s, 3),
        "overhead_pct": round(100 * (api_s / bare_s - 1), 1),
        "server_extraction_s": round(statistics.median(inside), 3),
        # The request minus PyRadiomics' own time in the server: what the platform adds (fetch, cache, hash, store).
        "platform_share_s": round(statistics.median(a - i for a, i in zip(api, inside, strict=True)), 3),
        "api_samples_s": [round(v, 3) for v in api],
        "bare_samples_s": [round(v, 3) for v in plain],
        "max_relative_feature_difference": max_relative_difference(answer["features"], reference_features),
        "server_peak_rss_mb": round(peak_rss_mb(ours.pid)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shapes", nargs="*", default=["x".join(map(str, s)) for s in SHAPES])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.repeats < 3:
        parser.error("--repeats: at least 3 (a median of fewer says little)")
    shapes = [tuple(int(v) for v in text.split("x")) for text in args.shapes]
    rows = []
    with tempfile.TemporaryDirectory(prefix="awesomme-radiomics-bench-") as scratch:
        work = Path(scratch)
        with platform(work) as ours:
            cohort = accounts(ours)
            for shape in shapes:
                rows.append(measure(ours, cohort, shape, args.repeats, work / "phantoms"))  # type: ignore[arg-type]
                write(rows, args.repeats)  # after each shape: a run cut short keeps what it measured
    print()
    print(
        f"{'shape':>12} {'features':>8} {'API s':>7} {'bare s':>7} {'API/bare':>8} {'overhead':>8} {'platform s':>10}"
    )
    for row in rows:
        print(
            f"{row['shape']:>12} {row['features']:>8} {row['api_s']:>7.2f} {row['bare_pyradiomics_s']:>7.2f} "
            f"{row['ratio_api_over_bare']:>8.3f} {row['overhead_pct']:>7.1f}% {row['platform_share_s']:>10.3f}"
        )
    worst = max(row["ratio_api_over_bare"] for row in rows) - 1
    verdict = "within" if worst <= TARGET_OVERHEAD else "OVER"
    print(f"worst overhead {100 * worst:.1f}% ({verdict} the {100 * TARGET_OVERHEAD:.0f}% target)")
    print(f"written: {RESULTS.relative_to(REPO_ROOT)}")


def write(rows: list[dict[str, Any]], repeats: int) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "preset": PRESET,
        "repeats": repeats,
        "target_overhead": TARGET_OVERHEAD,
        "host": {"cpus": os.cpu_count(), "python": host.python_version(), "load_average": list(os.getloadavg())},
        "rows": rows,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
