"""Table 3 on a GPU: decode of the DICOM series -> forward pass (fp32 and bf16) -> argmax -> SEG encode.

One process, no servers: generates the paper's three CT shapes with the phantom generator (``awesomme phantom
--shape`` writes the same series) in a temporary directory, then times, per shape, the median of ``--repeats``:

- ``decode_s``: reading the series' files with pydicom and building the volume (``volume_from_datasets``, what our
  server does on a cache miss, without the HTTP transfer);
- ``upload_pre_s``: the volume to the device and its intensity scaling there;
- ``forward_fp32_s`` / ``forward_bf16_s``: Table 3's network and sliding window (``table3_network.py``), sliding
  window aggregation included, one window at a time (``--sw-batch 1``) and batched (``--sw-batch``); bf16 under
  ``torch.autocast``;
- ``argmax_s``: the label map on the device, then copied back to the host;
- ``seg_encode_s``: the DICOM SEG of the label map (highdicom, ``encode_seg``, as our server writes it).

Baselines in the same run: the forward pass on the host's CPU (all its cores, ``--cpu-repeats`` passes), fp32 for
bf16, one window at a time for the batched windows. ``dice_bf16_vs_fp32`` checks that bf16 labels the same voxels.
Needs pydicom, highdicom, MONAI and pydantic beside torch. Writes ``--out`` (default
``benchmarks/results/table3_gpu.json``) and leaves no file behind.

    python benchmarks/table3_gpu.py [--shapes 16x512x512 ...] [--repeats 5] [--out FILE]
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "extensions")]  # `benchmarks.*` and `awesomme.*` as a script

import numpy as np  # noqa: E402
import pydicom  # noqa: E402
import torch  # noqa: E402
from monai.inferers import sliding_window_inference  # noqa: E402

from benchmarks.table3_network import OVERLAP, ROI_XYZ, SCALE, SHAPES, parse_shape, stock_network  # noqa: E402

if not hasattr(np, "float_"):  # highdicom 0.22 (our pin) names np.float_, which NumPy 2 (a GPU image's) removed
    np.float_ = np.float64  # type: ignore[attr-defined]

RESULTS = REPO_ROOT / "benchmarks" / "results" / "table3_gpu.json"
PHANTOM_SEED = 3  # the series table3.py stores


def synchronised(device: torch.device, run: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds of ``run()`` with the device's queued work finished at both ends, and its result."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    result = run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, result


def median_time(device: torch.device, run: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median seconds of ``repeats`` timed calls after one untimed warm-up, and the last result."""
    result = run()
    seconds = []
    for _ in range(repeats):
        elapsed, result = synchronised(device, run)
        seconds.append(elapsed)
    return statistics.median(seconds), result


def decode(files: list[Path]) -> tuple[list[pydicom.Dataset], Any]:
    """The series' datasets and its volume, as our server decodes a fetched series."""
    from awesomme.dicom.volumes import volume_from_datasets

    datasets = [pydicom.dcmread(path) for path in files]
    return datasets, volume_from_datasets(datasets)


def upload_and_scale(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """(1, 1, x, y, z) float on ``device``, scaled as the model's pre-processing says (MONAI's transform)."""
    from monai.transforms import ScaleIntensityRange

    volume = torch.from_numpy(array).to(device, non_blocking=False).permute(2, 1, 0).float()
    scaled = ScaleIntensityRange(**SCALE)(volume)
    return torch.as_tensor(scaled)[None, None]


def forward(network: torch.nn.Module, tensor: torch.Tensor, sw_batch: int, bf16: bool) -> torch.Tensor:
    with torch.inference_mode(), torch.autocast(tensor.device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = sliding_window_inference(tensor, ROI_XYZ, sw_batch, network, overlap=OVERLAP)
    assert isinstance(logits, torch.Tensor)
    return logits


def argmax_to_host(logits: torch.Tensor) -> np.ndarray:
    """The label map (slice, row, column) uint8 on the host."""
    labels = logits[0].argmax(dim=0).to(torch.uint8)  # (x, y, z)
    return labels.permute(2, 1, 0).contiguous().cpu().numpy()


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def encode(datasets: list[pydicom.Dataset], label_map: np.ndarray) -> Any:
    from highdicom.seg import SegmentAlgorithmTypeValues

    from awesomme.dicom.seg import encode_seg, seg_content
    from awesomme.dicom.volumes import sort_by_position

    return encode_seg(
        sort_by_position(datasets),  # the label map's slice order
        seg_content(label_map, {1: "nodule"}),
        algorithm_type=SegmentAlgorithmTypeValues.AUTOMATIC,
        series_description="bench_unet 1.0.0",
        content_description="benchmark only: random weights",
        algorithm_name="bench_unet",
        algorithm_version="1.0.0",
    )


def measure_shape(
    shape: tuple[int, int, int], device: torch.device, repeats: int, sw_batch: int, cpu_repeats: int, work: Path
) -> dict[str, Any]:
    from awesomme.phantoms import generate_patient

    name = "x".join(map(str, shape))
    start = time.perf_counter()
    patient = generate_patient("chest-ct", PHANTOM_SEED, work / name, shape=shape)
    generate_s = time.perf_counter() - start
    files = sorted(patient.dicom_files)
    decode_s, (datasets, volume) = median_time(torch.device("cpu"), lambda: decode(files), repeats)
    network = stock_network().to(device)
    upload_s, tensor = median_time(device, lambda: upload_and_scale(volume.array, device), repeats)

    torch.backends.cudnn.benchmark = True  # the best convolution algorithm for the window's shape, found once
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    row: dict[str, Any] = {"shape": name, "generate_s": round(generate_s, 2)}
    masks: dict[str, np.ndarray] = {}
    for precision, bf16 in (("fp32", False), ("bf16", True)):
        for batch in sorted({1, sw_batch}):
            key = f"forward_{precision}_s" + ("" if batch == 1 else f"_sw{batch}")
            seconds, logits = median_time(device, lambda b=batch, f=bf16: forward(network, tensor, b, f), repeats)
            row[key] = round(seconds, 4)
            if batch == sw_batch:
                argmax_s, masks[precision] = median_time(device, lambda lg=logits: argmax_to_host(lg), repeats)
                row[f"argmax_{precision}_s"] = round(argmax_s, 4)
            del logits
    if device.type == "cuda":
        row["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20)
    row["dice_bf16_vs_fp32"] = round(dice(masks["fp32"], masks["bf16"]), 5)
    row["labelled_fraction"] = round(float((masks["fp32"] > 0).mean()), 4)
    if masks["fp32"].any():
        row["seg_encode_s"] = round(median_time(torch.device("cpu"), lambda: encode(datasets, masks["fp32"]), 1)[0], 3)
    else:
        row["seg_encode_s"] = None  # a SEG needs one segmented voxel: random weights labelled none
    best = f"forward_bf16_s{'' if sw_batch == 1 else f'_sw{sw_batch}'}"
    row["pipeline_bf16_s"] = round(
        decode_s + upload_s + row[best] + row["argmax_bf16_s"] + (row["seg_encode_s"] or 0.0), 3
    )
    row.update({"decode_s": round(decode_s, 3), "upload_pre_s": round(upload_s, 4)})
    row["ratio_bf16_vs_fp32"] = round(row[best.replace("bf16", "fp32")] / row[best], 2)
    if cpu_repeats:
        cpu_network, cpu_tensor = stock_network(), tensor.float().cpu()
        cpu_s, _ = median_time(torch.device("cpu"), lambda: forward(cpu_network, cpu_tensor, 1, False), cpu_repeats)
        row["forward_cpu_fp32_s"] = round(cpu_s, 3)
        row["ratio_gpu_bf16_vs_cpu"] = round(cpu_s / row[best], 1)
    return row


def print_table(rows: list[dict[str, Any]]) -> None:
    columns = [key for key in rows[0] if key != "shape"]
    print(f"{'':28s}" + "".join(f"{row['shape']:>16s}" for row in rows))
    for key in columns:
        print(f"{key:28s}" + "".join(f"{row.get(key)!s:>16s}" for row in rows))


def machine(device: torch.device) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "python": host.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
    }
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        facts.update(gpu=properties.name, gpu_memory_mb=round(properties.total_memory / 2**20))
        facts["cuda"] = torch.version.cuda
        facts["cudnn"] = torch.backends.cudnn.version()
    return facts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", nargs="+", type=parse_shape, default=list(SHAPES), help="SLICESxROWSxCOLS")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per step (median)")
    parser.add_argument("--sw-batch", type=int, default=8, help="windows per forward call, besides one at a time")
    parser.add_argument("--cpu-repeats", type=int, default=1, help="CPU forward passes, the baseline (0: none)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    rows = []
    with tempfile.TemporaryDirectory(prefix="awesomme-table3-gpu-") as directory:
        for shape in args.shapes:
            print(f"shape {'x'.join(map(str, shape))}", flush=True)
            rows.append(measure_shape(shape, device, args.repeats, args.sw_batch, args.cpu_repeats, Path(directory)))
            print(json.dumps(rows[-1]), flush=True)
    print_table(rows)
    report = {"rows": rows, "machine": machine(device), "repeats": args.repeats, "sw_batch": args.sw_batch}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
