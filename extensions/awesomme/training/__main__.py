"""``python -m awesomme.training --model NAME [--budget-s N]`` or ``--all``: train, evaluate, write weights + YAML.

Segmentation models and the classification model (``osteosarcoma_response``) alike.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from awesomme.training import classifier
from awesomme.training.models import MODELS
from awesomme.training.train import run

CLASSIFIER = classifier.SPEC.name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m awesomme.training", description=__doc__)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", choices=sorted([*MODELS, CLASSIFIER]), help="train one model")
    which.add_argument("--all", action="store_true", help="train all models, one after the other")
    parser.add_argument("--budget-s", type=float, default=None, help="training wall-time budget per model")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    names = sorted([*MODELS, CLASSIFIER]) if args.all else [args.model]
    for name in names:
        if name == CLASSIFIER:
            print(json.dumps({name: classifier.run()["validation"]}, indent=1))
            continue
        summary = run(MODELS[name], budget_s=args.budget_s)
        print(json.dumps({name: summary["validation"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
