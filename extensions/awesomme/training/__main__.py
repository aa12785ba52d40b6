"""``python -m awesomme.training --model NAME [--budget-s N]`` or ``--all``: train, evaluate, write weights + YAML."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from awesomme.training.models import MODELS
from awesomme.training.train import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m awesomme.training", description=__doc__)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", choices=sorted(MODELS), help="train one model")
    which.add_argument("--all", action="store_true", help="train all models, one after the other")
    parser.add_argument("--budget-s", type=float, default=None, help="training wall-time budget per model")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    names = sorted(MODELS) if args.all else [args.model]
    for name in names:
        summary = run(MODELS[name], budget_s=args.budget_s)
        print(json.dumps({name: summary["validation"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
