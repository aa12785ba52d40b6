"""Train one model from its :class:`~awesomme.training.models.ModelSpec`, evaluate it, write weights and YAML."""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import shutil
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from awesomme.core.checksums import sha256_of
from awesomme.core.config import get_settings
from awesomme.inference.config import ConfigError, SegmentationModelConfig, load_config_file
from awesomme.inference.network import SHIPPED_WEIGHTS_DIR, build_network, load_network
from awesomme.inference.predict import predict
from awesomme.phantoms import synthesize
from awesomme.training.data import load_patients, sample_patches, sample_slices
from awesomme.training.evaluate import evaluate_nodules, evaluate_segmentation
from awesomme.training.loop import Batch, TrainResult, seed_everything, train
from awesomme.training.models import ModelSpec, base_config

__all__ = [
    "CONFIG_DIR",
    "demo_runtime_s",
    "evaluate_and_write",
    "reevaluate",
    "run",
    "shipped_target_met",
    "train_network",
    "write_yaml",
]

logger = logging.getLogger(__name__)
CONFIG_DIR = Path(__file__).resolve().parents[3] / "infer_configs"
DEMO_SEED = 0  # the series timed for expected_runtime_s (a training seed: timing only)


def train_network(
    spec: ModelSpec, budget_s: float | None = None, max_iterations: int | None = None, device: str = "cpu"
) -> tuple[torch.nn.Module, TrainResult, dict[str, Any]]:
    """Build and train the network; returns it, the loop's result and the facts for the YAML's ``training``.

    On a GPU the spec's :class:`~awesomme.training.models.GpuRecipe` applies, if it has one.
    """
    on_gpu = torch.device(device).type != "cpu"
    workers = 1
    if on_gpu and spec.gpu is not None:
        recipe = spec.gpu
        spec = dataclasses.replace(
            spec,
            train_seeds=recipe.train_seeds,
            batch=recipe.batch,
            budget_s=recipe.budget_s,
            max_iterations=recipe.max_iterations,
        )
        workers = recipe.data_workers
    config = base_config(spec)
    seed_everything(spec.torch_seed, threads=spec.threads, deterministic=not on_gpu)
    rng = np.random.default_rng(spec.numpy_seed)
    start = time.perf_counter()
    patients = load_patients(
        spec.kind, spec.train_seeds, config, spec.structure, spec.region_structure, spec.bright_min, workers
    )
    data_s = time.perf_counter() - start
    logger.info("%s: %d training patients prepared in %.0f s", spec.name, len(patients), data_s)
    next_batch: Callable[[], Batch]
    if config.inference.mode == "slices":
        size2 = (spec.patch[0], spec.patch[1])
        next_batch = partial(sample_slices, patients, size2, spec.batch, rng, spec.positive_fraction, spec.flip)
    else:
        size3 = (spec.patch[0], spec.patch[1], spec.patch[2])
        next_batch = partial(
            sample_patches,
            patients,
            size3,
            spec.batch,
            rng,
            spec.positive_fraction,
            spec.flip,
            negatives=spec.negatives,
            per_lesion=spec.per_lesion,
        )
    network = build_network(config)
    budget = spec.budget_s if budget_s is None else budget_s
    result = train(
        network,
        next_batch,
        max_iterations=spec.max_iterations if max_iterations is None else max_iterations,
        budget_s=max(budget - data_s, 1.0),
        learning_rate=spec.learning_rate,
        device=device,
    )
    logger.info("%s: %d iterations in %.0f s (%s)", spec.name, result.iterations, result.wall_s, result.stopped_by)
    seeds = list(spec.train_seeds)
    facts = {
        "data": "synthetic phantoms from awesomme.phantoms",
        "phantom_kind": spec.kind,
        "target_structure": spec.structure,
        "seeds": f"{seeds[0]}-{seeds[-1]} ({len(seeds)} patients, default grid)",
        "torch_seed": spec.torch_seed,
        "numpy_seed": spec.numpy_seed,
        "iterations": result.iterations,
        "stopped_by": result.stopped_by,
        "batch_size": spec.batch,
        "patch_size": list(spec.patch),
        "positive_fraction": spec.positive_fraction,
        **_sampling_facts(spec),
        "optimiser": f"Adam lr {spec.learning_rate:g} (x0.1 for the last quarter), weight decay 1e-5",
        "loss": "MONAI DiceCELoss (softmax, batch Dice)",
        "final_loss": round(result.mean_loss(max(result.iterations - 50, 0), result.iterations), 4),
        "wall_time_s": round(data_s + result.wall_s, 1),
        "machine": _machine(device),
        "torch_threads": spec.threads,
        "torch_version": torch.__version__,
        "script": f"python -m awesomme.training --model {spec.name}" + (f" --device {device}" if on_gpu else ""),
    }
    return network, result, facts


def _machine(device: str) -> str:
    if torch.device(device).type == "cuda":
        return f"1 GPU ({torch.cuda.get_device_name(device)}), data prepared on a {os.cpu_count()}-core CPU"
    return f"{os.cpu_count()}-core CPU"


def _sampling_facts(spec: ModelSpec) -> dict[str, Any]:
    """How patches were chosen beyond ``positive_fraction`` (only what a spec sets)."""
    facts: dict[str, Any] = {}
    if spec.per_lesion:
        facts["positives"] = "centred on a random voxel of a random lesion (each lesion equally likely)"
    if spec.negatives is not None:
        hard, anywhere = spec.negatives.hard, spec.negatives.anywhere
        facts["negatives"] = (
            f"centred on: {spec.region_structure} voxels >= {spec.bright_min:g} that are not {spec.structure} "
            f"{hard:g}, anywhere in the volume {anywhere:g}, any {spec.region_structure} voxel "
            f"{1.0 - hard - anywhere:g}"
        )
    return facts


def demo_runtime_s(network: torch.nn.Module, config: SegmentationModelConfig, kind: str) -> dict[str, float]:
    """Measured predict time on a default-size demo series (training seed 0), on this machine."""
    phantom = synthesize(kind, DEMO_SEED)
    predict(network, phantom.volume[: min(4, phantom.volume.shape[0])], config)  # warm-up
    start = time.perf_counter()
    predict(network, phantom.volume, config)
    shape = "x".join(str(n) for n in phantom.volume.shape)
    return {f"cpu_2_threads_{shape}": round(time.perf_counter() - start, 2)}


def write_yaml(config: SegmentationModelConfig, path: Path) -> None:
    data = config.model_dump(mode="json", exclude={"source"})
    header = (
        f"# {config.name}: written by `python -m awesomme.training --model {config.name}` "
        "(weights sha256, training facts and held-out figures are measured, not typed in).\n"
    )
    path.write_text(header + yaml.safe_dump(data, sort_keys=False, width=120, default_flow_style=None))


def run(
    spec: ModelSpec,
    budget_s: float | None = None,
    weights_dir: Path | None = None,
    device: str = "cpu",
    evaluate: bool = True,
    candidates_dir: Path | None = None,
) -> dict[str, Any]:
    """Train, save the weights, evaluate on held-out phantoms, and rewrite ``infer_configs/<name>.yaml``.

    Shipped weights that meet their target are never replaced by weights that miss it (nor by weights not yet
    evaluated): those are written beside them, under ``candidates_dir/<name>/candidate-<time>/`` (the settings'
    ``models_dir`` by default) with their YAML, and the summary's ``kept`` says which target they missed.
    ``evaluate=False`` writes the YAML with the training facts and no figures, for weights trained on a lent
    machine: ``--evaluate-only`` then measures them where they will serve.
    """
    network, _, training = train_network(spec, budget_s, device=device)
    weights_dir = weights_dir or SHIPPED_WEIGHTS_DIR
    weights_dir.mkdir(parents=True, exist_ok=True)
    path = weights_dir / f"{spec.name}.pt"
    if shipped_target_met(spec, path):
        return _beside(spec, network, training, path, candidates_dir or get_settings().models_dir, evaluate)
    torch.save(network.state_dict(), path)
    if evaluate:
        return evaluate_and_write(spec, network, path, training)
    pending = {"pending": f"not evaluated yet: python -m awesomme.training --model {spec.name} --evaluate-only"}
    write_yaml(base_config(spec, sha256=sha256_of(path), training=training, validation=pending), _yaml_path(spec))
    return {"training": training, "validation": pending}


def shipped_target_met(spec: ModelSpec, weights: Path) -> bool:
    """Whether the shipped weights are there, are the ones their YAML describes, and met their target."""
    yaml_path = _yaml_path(spec)
    if not weights.is_file() or not yaml_path.is_file():
        return False
    try:
        current = load_config_file(yaml_path)
    except ConfigError:
        return False
    return bool(
        current is not None
        and current.weights.sha256 == sha256_of(weights)
        and (current.validation or {}).get("target_met") is True
    )


def _beside(
    spec: ModelSpec,
    network: torch.nn.Module,
    training: dict[str, Any],
    shipped: Path,
    candidates_dir: Path,
    evaluate: bool,
) -> dict[str, Any]:
    """New weights next to the ``shipped`` ones, which meet their target: evaluated there, and installed in their
    place only if they meet it too."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    folder = candidates_dir / spec.name / f"candidate-{stamp}"
    folder.mkdir(parents=True, exist_ok=False)
    path = folder / f"{spec.name}.pt"
    torch.save(network.state_dict(), path)
    if not evaluate:
        pending = {"pending": "not evaluated: the shipped weights, which meet their target, stay"}
        write_yaml(
            base_config(spec, sha256=sha256_of(path), training=training, validation=pending), folder / "model.yaml"
        )
        logger.warning("%s: new weights kept beside the shipped ones, in %s (not evaluated)", spec.name, folder)
        return {"training": training, "validation": pending, "kept": str(folder)}
    summary = evaluate_and_write(spec, network, path, training, yaml_path=folder / "model.yaml")
    validation = summary["validation"]
    if validation.get("target_met"):  # as good as the shipped ones' promise: they take their place
        shutil.copyfile(path, shipped)
        return evaluate_and_write(spec, network, shipped, training)
    missed = f"target missed: {validation.get('target')}; the shipped weights, which meet it, stay"
    logger.warning("%s: %s; the new weights are in %s", spec.name, missed, folder)
    print(f"{spec.name}: {missed} (new weights: {folder})", flush=True)
    return {**summary, "kept": str(folder), "missed": missed}


def reevaluate(spec: ModelSpec, weights_dir: Path | None = None) -> dict[str, Any]:
    """Evaluate the saved weights again with the spec's current inference settings (threshold, post-processing),
    keeping the YAML's training facts: no training, the weights file untouched."""
    path = (weights_dir or SHIPPED_WEIGHTS_DIR) / f"{spec.name}.pt"
    yaml_path = _yaml_path(spec)
    if not yaml_path.is_file():
        raise FileNotFoundError(f"{yaml_path.name} is missing: train the model first")
    current = load_config_file(yaml_path)
    if current is None:
        raise ValueError(f"{yaml_path.name} is not a segmentation model's YAML")
    digest = sha256_of(path)
    if digest != current.weights.sha256:  # its training facts would describe other weights
        raise ValueError(f"{path.name} is not the weights {yaml_path.name} describes (sha256 {digest})")
    config = base_config(spec, sha256=digest, training=current.training)
    network = load_network(config.model_copy(update={"weights": config.weights.model_copy(update={"file": str(path)})}))
    return evaluate_and_write(spec, network, path, current.training)


def evaluate_and_write(
    spec: ModelSpec, network: torch.nn.Module, path: Path, training: dict[str, Any], yaml_path: Path | None = None
) -> dict[str, Any]:
    """Held-out figures and run time of ``network`` (weights saved at ``path``), written into the model's YAML
    (or ``yaml_path``)."""
    torch.set_num_threads(2)  # evaluation and expected_runtime_s with 2 threads, whatever training used
    digest = sha256_of(path)
    config = base_config(spec, sha256=digest, training=training)
    network.eval()
    if spec.structure == "nodule":
        nodules = evaluate_nodules(network, config, spec.eval_patients)
        validation = nodules.summary()
        validation["target"] = "Dice >= 0.70 on solid/part-solid nodules >= 8 mm (per nodule)"
        validation["target_met"] = bool(validation["dice_nodules_ge_8mm"] and validation["dice_nodules_ge_8mm"] >= 0.70)
    else:
        metrics = evaluate_segmentation(network, config, spec.kind, spec.structure, spec.eval_patients)
        validation = metrics.summary()
        target = 0.80 if spec.structure == "tumour" else 0.90
        validation["target"] = f"mean Dice >= {target:.2f}"
        validation["target_met"] = bool(metrics.mean_dice >= target)
    validation = {
        "data": "held-out synthetic phantoms (seeds >= 50000, never used for training or tuning), default grid",
        "metric_notes": _metric_notes(spec),
        **({"tuning": spec.tuning} if spec.tuning else {}),
        **validation,
    }
    runtime = demo_runtime_s(network, config, spec.kind)
    config = base_config(spec, sha256=digest, training=training, validation=validation, expected_runtime_s=runtime)
    write_yaml(config, yaml_path or _yaml_path(spec))
    logger.info("%s: validation %s; runtime %s; %s", spec.name, validation, runtime, platform.processor())
    return {"training": training, "validation": validation, "expected_runtime_s": runtime}


def _yaml_path(spec: ModelSpec) -> Path:
    return CONFIG_DIR / f"{spec.name}.yaml"


def _metric_notes(spec: ModelSpec) -> str:
    if spec.structure == "nodule":
        return (
            "per nodule: Dice between the truth nodule and the predicted components touching it; detected = "
            "touched by a predicted component; false positive = predicted component (26-connected) touching no "
            "solid/part-solid nodule; patients taken in seed order from 50000 until the count with a nodule"
        )
    return f"Dice of label 1 vs the {spec.structure} truth per patient, on patients where it is present"
