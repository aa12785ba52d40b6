"""Why predictions off the event loop lost Table-3 speed: libgomp's spin-waits, throttled by a second team.

One forward pass of Table 3's network (16x512x512, ours: fast convolutions, ``--sw`` windows side by side), each
case in a fresh process on tcmalloc as our server runs, timed with its CPU time and the process's voluntary
context switches (an OpenMP worker that stopped spinning and slept):

- ``main``: the main thread runs the pass (as MONAI Label's endpoints on the event loop did);
- ``second``: the main thread ran one pass first (it owns an OpenMP team, as the loop's thread does once it loaded
  the models), then a long-lived thread runs it (the earlier attempt);
- ``only``: the main thread keeps one intra-op thread from the start, a long-lived thread runs the pass with all
  of them (``awesomme.inference.threads``: what the server does now).

    .venv/bin/python benchmarks/openmp_teams.py [--sw 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # `benchmarks.*` when run as a script

CASES = ("main", "second", "only")
SHAPE = (16, 512, 512)


def voluntary_switches() -> int:
    total = 0
    for tid in os.listdir(f"/proc/{os.getpid()}/task"):
        for line in Path(f"/proc/{os.getpid()}/task/{tid}/status").read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches"):
                total += int(line.split()[1])
    return total


def run_case(case: str, sw: int, repeats: int) -> dict[str, object]:
    import torch

    if case == "only":
        torch.set_num_threads(1)  # before any torch operation: the main thread never owns a team
    from awesomme.inference.config import SegmentationModelConfig
    from awesomme.inference.fast_convolutions import use_fast_convolutions
    from awesomme.inference.predict import forward_logits
    from benchmarks.table3_network import our_config, stock_network

    network = stock_network()
    with tempfile.TemporaryDirectory() as scratch:
        weights = Path(scratch) / "unet.pt"
        torch.save(network.state_dict(), weights)
        config = SegmentationModelConfig.model_validate(our_config(weights, sw))
    use_fast_convolutions(network)
    volume = torch.rand(1, *SHAPE[::-1])

    def one_pass() -> tuple[float, float, int]:
        cpu, switches, start = time.process_time(), voluntary_switches(), time.perf_counter()
        with torch.inference_mode():
            forward_logits(network, volume, config)
        return time.perf_counter() - start, time.process_time() - cpu, voluntary_switches() - switches

    threads = 2 if case == "only" else torch.get_num_threads()
    if case == "second":
        one_pass()
    executor = None if case == "main" else ThreadPoolExecutor(1, initializer=torch.set_num_threads, initargs=(threads,))
    run = one_pass if executor is None else (lambda: executor.submit(one_pass).result())
    run()  # warm: oneDNN's kernels, the heap
    rows = [run() for _ in range(repeats)]
    return {
        "case": case,
        "windows_side_by_side": sw,
        "wall_s": round(statistics.median(r[0] for r in rows), 3),
        "cpu_s": round(statistics.median(r[1] for r in rows), 3),
        "voluntary_context_switches": statistics.median(r[2] for r in rows),
        "load_average": round(os.getloadavg()[0], 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sw", type=int, default=2, help="windows side by side (1: the earlier attempt's setting)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.sw, args.repeats)), flush=True)
        return 0
    from awesomme.runtime.allocator import preload_environment

    environment = preload_environment("tcmalloc", os.environ) or dict(os.environ)
    for case in CASES:
        command = [sys.executable, __file__, "--case", case, "--sw", str(args.sw), "--repeats", str(args.repeats)]
        subprocess.run(command, env=environment, check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
