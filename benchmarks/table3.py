"""The paper's Table 3: one automatic segmentation request, ours against stock MONAI Label, on the same Orthanc.

Starts everything it needs on free loopback ports in a temporary directory (Orthanc, our platform with a benchmark
model, a stock MONAI Label server on its DICOMweb datastore), stores the paper's three CT shapes, and times
``POST /infer/<model>?image=<uid>`` end to end on both sides: cold (a series the server never fetched) and warm
(repeated), the median of ``--repeats`` each. Bare = the forward pass alone, for each side's settings, in a
process of its own with that side's memory allocator (tcmalloc for ours, as our server runs; the C library's for
stock). Writes ``benchmarks/results/table3.json`` and leaves nothing behind.

    .venv/bin/python benchmarks/table3.py [--shapes 16x512x512 ...] [--repeats 5]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform as host
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # `benchmarks.*` when run as a script

import httpx  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pydicom  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from monai.inferers import SlidingWindowInferer  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402
from requests_toolbelt.multipart.decoder import MultipartDecoder  # noqa: E402

from benchmarks.processes import free_port, peak_rss_mb, reset_peak_rss, rss_mb, stop_group  # noqa: E402
from benchmarks.table3_network import (  # noqa: E402
    COHORT,
    MODEL,
    NETWORK,
    OVERLAP,
    ROI_XYZ,
    SCALE,
    SHAPES,
    our_config,
    parse_shape,
    stock_network,
)

STOCK_SW_BATCH = 1  # SlidingWindowInferer's default, as in MONAI Label's sample apps
OURS_SW_BATCH = 2  # two windows side by side, each on one core: 1.05-1.1x over one at a time on both
BARE_REPEATS = 5  # forward passes alone (BareWorker), one after each of the first cold requests
RESULTS = REPO_ROOT / "benchmarks" / "results" / "table3.json"


# -- the network, as each side sees it ---------------------------------------------------------------------------
def write_models(configs_dir: Path, weights_dir: Path) -> Path:
    """One random network's weights, served by both sides, and our model's YAML; returns the weights file.

    MONAI Label's apps load images as (x, y, z) = (column, row, slice); our YAML says so (``axes: xyz``), so the
    very same weights file serves on both sides.
    """
    weights = weights_dir / "unet.pt"
    torch.save(stock_network().state_dict(), weights)
    (configs_dir / f"{MODEL}.yaml").write_text(yaml.safe_dump(our_config(weights, OURS_SW_BATCH)))
    return weights


# -- the two servers ---------------------------------------------------------------------------------------------
@dataclass
class Ours:
    settings: Any
    url: str
    pid: int
    member: tuple[str, str]
    token: str = ""

    def login(self) -> None:
        form = {"grant_type": "password", "username": self.member[0], "password": self.member[1]}
        reply = httpx.post(f"{self.url}/api/auth/token", data=form, timeout=60)
        reply.raise_for_status()
        self.token = reply.json()["access_token"]


@dataclass
class Stock:
    url: str
    process: subprocess.Popen


@contextmanager
def our_platform(work: Path, configs_dir: Path) -> Iterator[Ours]:
    environment = {
        "AWESOMME_INFER_CONFIGS_DIR": str(configs_dir),
        "AWESOMME_VAR_DIR": str(work / "var"),
        "AWESOMME_DATABASE_URL": "",
        "AWESOMME_PORT": str(free_port()),
        "AWESOMME_ORTHANC_URL": f"http://127.0.0.1:{free_port()}",
    }
    os.environ.update(environment)
    from awesomme.core.config import load_settings
    from awesomme.core.db import forget_engine
    from awesomme.runtime.orthanc import ensure_secrets
    from awesomme.runtime.platform import base_url, start_all, stop_all

    ensure_secrets(load_settings())
    settings = load_settings()
    forget_engine()
    try:
        started = start_all(settings)
        yield Ours(settings, base_url(settings), started.server_pid, _accounts(base_url(settings)))
    finally:
        stop_all(settings)


def _accounts(url: str) -> tuple[str, str]:
    """A platform admin makes the cohort the model is bound to; the benchmark runs as a plain member of it."""
    from awesomme.core.config import get_settings
    from awesomme.core.db import session_scope
    from awesomme.services import identity

    people = {"bench.admin": "bench-admin-password-1", "bench.member": "bench-member-password-1"}
    with session_scope() as session:
        for name, password in people.items():
            identity.create_user(session, get_settings(), name, password, admin=name == "bench.admin")
    admin = _token(url, "bench.admin", people["bench.admin"])
    reply = httpx.post(f"{url}/api/cohorts", json={"name": COHORT, "description": "Table 3"}, headers=admin)
    reply.raise_for_status()
    cohort = reply.json()["id"]
    httpx.put(f"{url}/api/cohorts/{cohort}/members/bench.member", json={"role": "member"}, headers=admin)
    return "bench.member", people["bench.member"]


def _token(url: str, username: str, password: str) -> dict[str, str]:
    form = {"grant_type": "password", "username": username, "password": password}
    reply = httpx.post(f"{url}/api/auth/token", data=form, timeout=60)
    reply.raise_for_status()
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


def attach(ours: Ours, study_uids: list[str]) -> None:
    admin = _token(ours.url, "bench.admin", "bench-admin-password-1")
    cohort = httpx.get(f"{ours.url}/api/cohorts", headers=admin).json()
    cohort_id = next(item["id"] for item in cohort if item["name"] == COHORT)
    reply = httpx.post(
        f"{ours.url}/api/cohorts/{cohort_id}/studies", json={"study_uids": study_uids}, headers=admin, timeout=60
    )
    reply.raise_for_status()


@contextmanager
def stock_server(work: Path, settings: Any, weights: Path) -> Iterator[Stock]:
    port = free_port()
    scratch = work / "stock"
    (scratch / "tmp").mkdir(parents=True)
    spec = {
        "network": NETWORK,
        "weights": str(weights),
        "roi_size_xyz": list(ROI_XYZ),
        "sw_batch_size": STOCK_SW_BATCH,
        "overlap": OVERLAP,
        "scale": SCALE,
    }
    environment = {
        **os.environ,
        "BENCH_MODEL": MODEL,
        "BENCH_STOCK_SPEC": json.dumps(spec),
        "MONAI_LABEL_DICOMWEB_USERNAME": settings.orthanc_username,
        "MONAI_LABEL_DICOMWEB_PASSWORD": settings.orthanc_password,
        "MONAI_LABEL_DICOMWEB_CACHE_PATH": str(scratch / "dicomweb"),
        "MONAI_LABEL_DATASTORE_CACHE_PATH": str(scratch / "datastore"),
        "MONAI_LABEL_SESSION_PATH": str(scratch / "sessions"),
        "MONAI_LABEL_TRACKING_ENABLED": "false",
        "MONAI_LABEL_AUTO_UPDATE_SCORING": "false",
        "TMPDIR": str(scratch / "tmp"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # dcmqi's binary
    }
    for ours_only in [key for key in environment if key.startswith("AWESOMME_")]:
        environment.pop(ours_only)
    argv = [
        sys.executable,
        "-m",
        "monailabel.main",
        "start_server",
        "--app",
        str(REPO_ROOT / "benchmarks" / "stock_app"),
    ]
    argv += ["--studies", settings.dicomweb_url, "--host", "127.0.0.1", "--port", str(port)]
    with open(scratch / "server.log", "wb") as log:
        process = subprocess.Popen(
            argv, env=environment, cwd=scratch, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    "stock MONAI Label exited at start:\n" + (scratch / "server.log").read_text()[-3000:]
                )
            try:
                if httpx.get(f"{url}/info/", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("stock MONAI Label did not come up")
            time.sleep(0.5)
        yield Stock(url, process)
    finally:
        stop_group(process)


# -- the series --------------------------------------------------------------------------------------------------
def store_copies(orthanc: Any, shape: tuple[int, int, int], copies: int, scratch: Path) -> list[tuple[str, str]]:
    """One phantom of ``shape`` stored ``copies`` times under new UIDs: (study, series) of each."""
    from awesomme.phantoms import generate_patient

    patient = generate_patient("chest-ct", 3, scratch, shape=shape)
    originals = [pydicom.dcmread(path) for path in patient.dicom_files]
    stored: list[tuple[str, str]] = []
    for _ in range(copies):
        study, series = generate_uid(), generate_uid()
        for ds in originals:
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        orthanc.store(originals)
        stored.append((study, series))
    shutil.rmtree(scratch)
    return stored


# -- one request -------------------------------------------------------------------------------------------------
@dataclass
class Answer:
    seconds: float
    mask: np.ndarray  # in RAS-closest canonical orientation, so both sides compare voxel for voxel
    params: dict[str, Any] = field(default_factory=dict)


# One client for every timed request, as a viewer or script keeps one: a new httpx client builds an SSL context
# (about 50 ms here, even for http://), which would be timed as both servers' overhead.
HTTP = httpx.Client(timeout=900)


def infer(url: str, series_uid: str, headers: dict[str, str] | None = None) -> Answer:
    """``POST /infer`` asking for everything (params and the .nii.gz mask), as MONAI Label's clients do."""
    start = time.perf_counter()
    reply = HTTP.post(
        f"{url}/infer/{MODEL}",
        params={"image": series_uid, "output": "all"},
        data={"params": "{}"},
        headers=headers or {},
    )
    seconds = time.perf_counter() - start
    if reply.status_code != 200:
        raise RuntimeError(f"{url} answered {reply.status_code}: {reply.text[:500]}")
    params: dict[str, Any] = {}
    mask = None
    for part in MultipartDecoder(reply.content, reply.headers["content-type"]).parts:
        disposition = part.headers.get(b"Content-Disposition", b"").decode()
        if 'name="params"' in disposition:
            params = json.loads(part.content)
        else:
            content = gzip.decompress(part.content) if part.content[:2] == b"\x1f\x8b" else part.content
            image = nib.as_closest_canonical(nib.Nifti1Image.from_bytes(content))
            mask = np.asanyarray(image.dataobj).astype(np.uint8)
    if mask is None:
        raise RuntimeError(f"{url} answered no mask")
    return Answer(seconds, mask, params)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return 0.0
    a, b = a > 0, b > 0
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


# -- bare forward passes -----------------------------------------------------------------------------------------
def bare_stock(shape: tuple[int, int, int]) -> Callable[[], None]:
    network = stock_network()
    tensor = torch.rand(1, 1, *shape[::-1])
    inferer = SlidingWindowInferer(roi_size=ROI_XYZ, sw_batch_size=STOCK_SW_BATCH, overlap=OVERLAP)

    def run() -> None:
        with torch.no_grad():  # what BasicInferTask uses
            inferer(tensor, network)

    return run


def bare_ours(
    shape: tuple[int, int, int],
    weights: Path,
    sw_batch_size: int = OURS_SW_BATCH,
    axes: str = "xyz",
    fast_convolutions: bool = True,
) -> Callable[[], None]:
    """Our forward pass alone, as ``predict()`` runs it; ``axes="zyx"`` feeds the network (slice, row, column);
    ``fast_convolutions`` = what ``load_network`` does (``awesomme.inference.fast_convolutions``)."""
    from awesomme.inference.config import SegmentationModelConfig
    from awesomme.inference.fast_convolutions import use_fast_convolutions
    from awesomme.inference.predict import forward_logits

    config = SegmentationModelConfig.model_validate(our_config(weights, sw_batch_size, axes))
    network = stock_network()
    if axes == "zyx":  # the same function on the transposed volume: every kernel's spatial axes reversed
        state = network.state_dict()
        network.load_state_dict(
            {k: v.permute(0, 1, 4, 3, 2).contiguous() if v.dim() == 5 else v for k, v in state.items()}
        )
    if fast_convolutions:
        use_fast_convolutions(network)
    tensor = torch.rand(1, *(shape if axes == "zyx" else shape[::-1]))  # in the network's axis order

    def run() -> None:
        with torch.inference_mode():  # what predict() uses
            forward_logits(network, tensor, config)

    return run


# What each forward-pass choice buys, one change at a time: (label, allocator, variant).
ABLATION = (
    ("stock (x, y, z), 1 window at a time", "system", "stock"),
    ("ours (slice, row, column), 1 window at a time, torch's convolutions", "system", "ours_zyx_torch_convolutions"),
    ("ours (x, y, z), 1 window at a time, torch's convolutions", "system", "ours_torch_convolutions"),
    ("ours (x, y, z), 1 window at a time, fast convolutions", "system", "ours_one_window"),
    ("ours (x, y, z), 1 window at a time, fast convolutions, tcmalloc", "tcmalloc", "ours_one_window"),
    ("ours (x, y, z), 2 windows side by side, fast convolutions, tcmalloc (our server)", "tcmalloc", "ours"),
)


def bare_variant(name: str, shape: tuple[int, int, int], weights: Path) -> Callable[[], None]:
    return {
        "stock": lambda: bare_stock(shape),
        "ours": lambda: bare_ours(shape, weights),  # as our server runs it
        "ours_one_window": lambda: bare_ours(shape, weights, 1),
        "ours_torch_convolutions": lambda: bare_ours(shape, weights, 1, fast_convolutions=False),
        "ours_zyx_torch_convolutions": lambda: bare_ours(shape, weights, 1, "zyx", fast_convolutions=False),
    }[name]()


class BareWorker:
    """Forward passes alone in a process of their own, with one side's allocator: ours runs on tcmalloc, as our
    server does (``awesomme.runtime.allocator``); stock on the C library's. The allocator is fixed when a process
    starts, hence a process per allocator; each pass is timed inside it, with the peak RSS it adds."""

    def __init__(self, allocator: str, variants: list[str], shape: tuple[int, int, int], weights: Path) -> None:
        from awesomme.runtime.allocator import preload_environment

        plain = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        environment = plain if allocator == "system" else preload_environment(allocator, plain)
        if environment is None:
            raise RuntimeError(f"the {allocator} allocator is not installed: run `make system-deps`")
        shape_text = "x".join(map(str, shape))
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--bare-worker", shape_text, str(weights), *variants],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=environment,
        )
        self._answer()  # built and ready: its start does not overlap a timed request

    def _answer(self) -> dict[str, float]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"a bare worker ended (exit {self.process.wait()})")
        return dict(json.loads(line))

    def run(self, variant: str) -> dict[str, float]:
        assert self.process.stdin is not None
        self.process.stdin.write(variant + "\n")
        self.process.stdin.flush()
        return self._answer()

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


def serve_bare_passes(shape: tuple[int, int, int], weights: Path, variants: list[str]) -> None:
    """The worker's side: builds the variants, then times one pass per variant name read from stdin."""
    runners = {name: bare_variant(name, shape, weights) for name in variants}
    for run in runners.values():  # as in a server that has answered before: oneDNN's kernels and the heap warm
        run()
    print(json.dumps({"ready": 1}), flush=True)
    for line in sys.stdin:
        before = rss_mb(os.getpid())
        reset_peak_rss(os.getpid())
        seconds = timed(runners[line.strip()])
        print(json.dumps({"seconds": seconds, "peak_above_start_mb": peak_rss_mb(os.getpid()) - before}), flush=True)


def forward_ablation(shape: tuple[int, int, int], weights: Path, repeats: int = 5) -> dict[str, dict[str, float]]:
    """What each forward-pass choice buys, bare, interleaved: median seconds per variant, and peak RSS."""
    workers = {
        allocator: BareWorker(allocator, [v for _, a, v in ABLATION if a == allocator], shape, weights)
        for allocator in ("system", "tcmalloc")
    }
    seconds: dict[str, list[float]] = {label: [] for label, _, _ in ABLATION}
    extra_mb: dict[str, float] = {label: 0.0 for label, _, _ in ABLATION}
    try:
        for _ in range(repeats):
            for label, allocator, variant in ABLATION:
                figures = workers[allocator].run(variant)
                seconds[label].append(figures["seconds"])
                extra_mb[label] = max(extra_mb[label], figures["peak_above_start_mb"])
    finally:
        for worker in workers.values():
            worker.close()
    return {
        label: {"seconds": round(statistics.median(values), 3), "peak_rss_above_start_mb": round(extra_mb[label])}
        for label, values in seconds.items()
    }


def allocator_of(pid: int) -> str:
    """What serves a process's malloc, as its memory map shows."""
    return "tcmalloc" if "libtcmalloc" in Path(f"/proc/{pid}/maps").read_text() else "system"


def timed(run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


# -- one shape ---------------------------------------------------------------------------------------------------
def measure_shape(
    shape: tuple[int, int, int], repeats: int, ours: Ours, stock: Stock, orthanc: Any, work: Path, weights: Path
) -> dict[str, Any]:
    label = "x".join(map(str, shape))
    series = store_copies(orthanc, shape, repeats, work / f"phantom-{label}")
    attach(ours, [study for study, _ in series])
    ours.login()
    auth = {"Authorization": f"Bearer {ours.token}"}
    samples: dict[str, list[float]] = {"ours_cold": [], "ours_warm": [], "stock_cold": [], "stock_warm": []}
    phases: dict[str, list[float]] = {}
    peaks = {"ours": 0.0, "stock": 0.0}
    reset_peak_rss(ours.pid)
    reset_peak_rss(stock.process.pid)
    first: dict[str, Answer] = {}
    runners = {
        "ours": BareWorker("tcmalloc", ["ours"], shape, weights),
        "stock": BareWorker("system", ["stock"], shape, weights),
    }
    bare: dict[str, list[float]] = {"ours": [], "stock": []}
    for index, (_, series_uid) in enumerate(series):
        # Alternate who goes first: the second finds the series in Orthanc's page cache.
        order = ("ours", "stock") if index % 2 == 0 else ("stock", "ours")
        for side in order:
            answer = infer(ours.url, series_uid, auth) if side == "ours" else infer(stock.url, series_uid)
            samples[f"{side}_cold"].append(answer.seconds)
            first.setdefault(side, answer)
            if side == "ours":
                for phase, seconds in answer.params.get("timings_s", {}).items():
                    phases.setdefault(phase, []).append(seconds)
        if index < BARE_REPEATS:  # bare passes between the cold requests: under the same load as they are
            for side in order:
                bare[side].append(runners[side].run(side)["seconds"])
        print(
            f"  {label} cold {index + 1}/{repeats}: ours {samples['ours_cold'][-1]:.2f} s, "
            f"stock {samples['stock_cold'][-1]:.2f} s",
            flush=True,
        )
    warm_uid = series[0][1]
    for _ in range(repeats):
        samples["ours_warm"].append(infer(ours.url, warm_uid, auth).seconds)
        samples["stock_warm"].append(infer(stock.url, warm_uid).seconds)
    peaks = {"ours": peak_rss_mb(ours.pid), "stock": peak_rss_mb(stock.process.pid)}
    for phase, values in phases.items():
        print(f"  {label} ours phase {phase}: median {statistics.median(values):.3f} s")

    seg_errors = check_seg(orthanc, first["ours"].params.get("seg_series_uid"), work)
    ours_model = statistics.median(bare["ours"])
    stock_model = statistics.median(bare["stock"])
    for worker in runners.values():
        worker.close()
    row: dict[str, Any] = {"shape": label}
    for key, values in samples.items():
        row[f"{key}_s"] = round(statistics.median(values), 3)
    row["ours_model_s"] = round(ours_model, 3)
    row["stock_model_s"] = round(stock_model, 3)
    row["ours_overhead_s"] = round(row["ours_cold_s"] - ours_model, 3)
    row["stock_overhead_s"] = round(row["stock_cold_s"] - stock_model, 3)
    row["ratio_cold"] = round(row["stock_cold_s"] / row["ours_cold_s"], 2)
    row["ratio_overhead"] = round(row["stock_overhead_s"] / max(row["ours_overhead_s"], 1e-3), 2)
    row["dice_vs_stock"] = round(dice(first["ours"].mask, first["stock"].mask), 4)
    # The server's own view: the request minus its forward pass as timed inside it (load-independent of bare).
    in_server = [c - f for c, f in zip(samples["ours_cold"], phases.get("forward", []), strict=False)]
    row["ours_overhead_in_server_s"] = round(statistics.median(in_server), 3) if in_server else None
    row["seg_encode_s"] = round(statistics.median(phases.get("seg_encode", [0.0])), 3)
    row["store_s"] = round(statistics.median(phases.get("store", [0.0])), 3)
    row["peak_rss_mb"] = round(peaks["ours"])
    row["stock_peak_rss_mb"] = round(peaks["stock"])
    row["ours_phases_s"] = {phase: round(statistics.median(values), 3) for phase, values in phases.items()}
    row["seg_dciodvfy_errors"] = seg_errors
    row["mask_fraction"] = round(float((first["ours"].mask > 0).mean()), 4)
    return row


def check_seg(orthanc: Any, seg_uid: str | None, work: Path) -> int | None:
    """dciodvfy's error count for the SEG our first cold request stored (None without dciodvfy or SEG)."""
    if not seg_uid or shutil.which("dciodvfy") is None:
        return None
    state = orthanc.series_state(seg_uid)
    path = work / "seg.dcm"
    orthanc.retrieve_series(state.study_uid, state.series_uid)[0].save_as(path)
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
    path.unlink()
    return sum(line.startswith("Error") for line in (run.stdout + run.stderr).splitlines())


# -- report ------------------------------------------------------------------------------------------------------
COLUMNS = (
    ("shape", "shape", "{}"),
    ("ours_cold_s", "ours cold", "{:.2f}"),
    ("ours_warm_s", "warm", "{:.2f}"),
    ("ours_model_s", "model", "{:.2f}"),
    ("ours_overhead_s", "overhead", "{:.2f}"),
    ("stock_cold_s", "stock cold", "{:.2f}"),
    ("stock_warm_s", "warm", "{:.2f}"),
    ("stock_model_s", "model", "{:.2f}"),
    ("stock_overhead_s", "overhead", "{:.2f}"),
    ("ratio_cold", "x cold", "{:.2f}"),
    ("ratio_overhead", "x overhead", "{:.1f}"),
    ("dice_vs_stock", "Dice", "{:.4f}"),
    ("seg_encode_s", "SEG enc", "{:.2f}"),
    ("store_s", "store", "{:.2f}"),
    ("peak_rss_mb", "RSS MB", "{}"),
    ("stock_peak_rss_mb", "stock RSS", "{}"),
)


def print_table(rows: list[dict[str, Any]]) -> None:
    cells = [[title for _, title, _ in COLUMNS]]
    cells += [[fmt.format(row[key]) for key, _, fmt in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    for line in cells:
        print("  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)))


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "cpu": _cpu_model(),
        "python": host.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return host.processor()


def write_report(out: Path, rows: list[dict[str, Any]], extra: dict[str, Any], repeats: int, left: Any) -> None:
    """The results so far (rewritten after each shape, so a long run that is stopped keeps what it measured)."""
    report = {"rows": rows, "machine": {**machine(), **extra}, "repeats": repeats}
    report["our_temporary_files_left"] = left
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", nargs="+", type=parse_shape, default=list(SHAPES), help="SLICESxROWSxCOLS")
    parser.add_argument("--repeats", type=int, default=5, help="cold and warm requests per shape (median)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--bare-worker", nargs="+", metavar=("SHAPE", "WEIGHTS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_worker:  # BareWorker's process
        shape_text, weights_path, *variants = args.bare_worker
        serve_bare_passes(parse_shape(shape_text), Path(weights_path), variants)
        return 0

    from awesomme.orthanc.client import OrthancClient

    rows = []
    with tempfile.TemporaryDirectory(prefix="awesomme-table3-") as directory:
        work = Path(directory)
        configs = work / "infer_configs"
        configs.mkdir()
        weights = write_models(configs, work)
        load_at_start = [round(v, 2) for v in os.getloadavg()]
        with our_platform(work, configs) as ours, stock_server(work, ours.settings, weights) as stock:
            orthanc = OrthancClient(ours.settings)
            idle = {
                "ours_idle_rss_mb": round(rss_mb(ours.pid)),
                "stock_idle_rss_mb": round(rss_mb(stock.process.pid)),
                "ours_allocator": allocator_of(ours.pid),
                "stock_allocator": allocator_of(stock.process.pid),
            }
            for shape in args.shapes:
                print(f"shape {'x'.join(map(str, shape))}", flush=True)
                rows.append(measure_shape(shape, args.repeats, ours, stock, orthanc, work, weights))
                write_report(args.out, rows, {**idle, "load_average_at_start": load_at_start}, args.repeats, None)
            ablation_shape = "x".join(map(str, args.shapes[0]))
            print(f"forward pass alone, {ablation_shape}, each choice:", flush=True)
            ablation = {ablation_shape: forward_ablation(args.shapes[0], weights)}
            for name, figures in ablation[ablation_shape].items():
                print(f"  {name:55s} {figures['seconds']:.3f} s, peak +{figures['peak_rss_above_start_mb']} MB")
            from awesomme.runtime.platform import stop_server

            time.sleep(1.0)  # background removals of answered files
            scratch = ours.settings.var_dir / "tmp"
            left = sorted(p.name for p in scratch.glob("*") if p.name not in ("torchinductor_root", "torchinductor"))
            stop_server(ours.settings)
    print_table(rows)
    extra = {**idle, "load_average_at_start": load_at_start, "forward_ablation_s": ablation}
    write_report(args.out, rows, extra, args.repeats, left)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run the clean-ups on a polite stop too
    sys.exit(main())
