"""``python -m awesomme.training --model NAME [--budget-s N]`` or ``--all``: train, evaluate, write weights + YAML.

``--evaluate-only`` evaluates the saved weights again with the current inference settings (no training).
``--device cuda`` trains on a GPU (with the model's GPU recipe, if it has one); ``--no-evaluate`` leaves the
held-out evaluation to a later ``--evaluate-only`` on the machine that will serve the weights.

Segmentation models and the classification model (``osteosarcoma_response``) alike.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

import torch

from awesomme.training.models import MODELS
from awesomme.training.train import reevaluate, run

CLASSIFIER = "osteosarcoma_response"  # imported only when trained: radiomics and scikit-learn are not light


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m awesomme.training", description=__doc__)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", choices=sorted([*MODELS, CLASSIFIER]), help="train one model")
    which.add_argument("--all", action="store_true", help="train all models, one after the other")
    parser.add_argument("--budget-s", type=float, default=None, help="training wall-time budget per model")
    parser.add_argument(
        "--evaluate-only", action="store_true", help="evaluate the saved weights again, rewrite the YAML"
    )
    parser.add_argument(
        "--device", default="cpu", help="where to train: cpu (default), cuda, or auto (cuda when there is one)"
    )
    parser.add_argument(
        "--no-evaluate", action="store_true", help="train and write the weights and YAML, evaluate later"
    )
    args = parser.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    names = sorted([*MODELS, CLASSIFIER]) if args.all else [args.model]
    if args.evaluate_only:
        if args.model == CLASSIFIER:
            parser.error("--evaluate-only is for the segmentation models")
        names = [name for name in names if name != CLASSIFIER]
    for name in names:
        if name == CLASSIFIER:
            from awesomme.training import classifier

            print(json.dumps({name: classifier.run()["validation"]}, indent=1))
            continue
        if args.evaluate_only:
            summary = reevaluate(MODELS[name])
        else:
            summary = run(MODELS[name], args.budget_s, device=args.device, evaluate=not args.no_evaluate)
        print(json.dumps({name: summary["validation"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
