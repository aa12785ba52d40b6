"""Command line: ``python -m awesomme.phantoms KIND --seed N --out DIR [--shape 26x1024x1024]``.

With ``--count M`` seeds N..N+M-1 are written to ``DIR/<patient id>/``; one JSON line
per patient (id, grid, seconds) goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import EVALUATION_SEED_START, KINDS, generate_patient
from .geometry import parse_shape


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m awesomme.phantoms", description=__doc__)
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=1, help="number of consecutive seeds")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--shape", type=parse_shape, default=None, help="SLICESxROWSxCOLS, e.g. 26x1024x1024")
    args = parser.parse_args(argv)

    seeds = range(args.seed, args.seed + args.count)
    if seeds.start < EVALUATION_SEED_START < seeds.stop:
        print(f"note: seeds >= {EVALUATION_SEED_START} are reserved for evaluation", file=sys.stderr)
    for seed in seeds:
        start = time.perf_counter()
        out_dir = args.out if args.count == 1 else args.out / f"{args.kind}-{seed:05d}"
        patient = generate_patient(args.kind, seed, out_dir, shape=args.shape)
        record = {
            "kind": patient.kind,
            "seed": patient.seed,
            "patient_id": patient.patient_id,
            "out_dir": str(out_dir),
            "shape": patient.shape,
            "spacing": patient.spacing,
            "seconds": round(time.perf_counter() - start, 3),
        }
        print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
