"""Train the demo classification model ``osteosarcoma_response`` and write its skops artefact and YAML.

Chemotherapy response (good / poor, from each phantom's ``clinical.json``) from radiomics of the tumour on MR:
features of the ``osteosarcoma-mr`` preset, ReliefF feature selection, then an SVM with calibrated probabilities,
as in osteosarcoma response studies. Trained on phantoms with seeds below 50000; the AUC is reported
cross-validated on the training set and on held-out phantoms (seeds from 50000, never used for fitting or tuning).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import resource
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sklearn.calibration import CalibratedClassifierCV
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from skrebate import ReliefF

from awesomme.analysis.classification import SHIPPED_ARTEFACTS_DIR, load_artefact, save_artefact
from awesomme.analysis.classifier_config import DEMO_NOTICE, ClassificationModelConfig
from awesomme.analysis.radiomics import builtin_preset, extract_features, image_from_array
from awesomme.phantoms import EVALUATION_SEED_START, synthesize

__all__ = ["SPEC", "ClassifierSpec", "build_pipeline", "phantom_features", "run"]

logger = logging.getLogger(__name__)
CONFIG_DIR = Path(__file__).resolve().parents[3] / "infer_configs"
POSITIVE = "good"  # the AUC's positive class: a good responder


@dataclass(frozen=True)
class ClassifierSpec:
    name: str
    version: str
    preset: str
    labels: tuple[str, ...]
    n_train: int
    n_held_out: int
    # Small phantoms keep feature extraction of every patient within minutes on 2 cores (the same grid the
    # integration tests store).
    shape: tuple[int, int, int]
    n_features_to_select: int
    n_neighbors: int
    cv_folds: int
    random_state: int
    cohorts: tuple[str, ...]


SPEC = ClassifierSpec(
    name="osteosarcoma_response",
    version="0.1.0",
    preset="osteosarcoma-mr",
    labels=("good", "poor"),
    n_train=177,
    n_held_out=40,
    shape=(24, 160, 160),
    n_features_to_select=20,
    n_neighbors=10,
    cv_folds=5,
    random_state=4567,
    cohorts=("osteosarcoma",),
)
INTENDED_USE = (
    f"{DEMO_NOTICE}. Trained only on synthetic phantoms (awesomme.phantoms) to show computer-aided prognosis "
    "working end to end; not validated on real patients; not for diagnosis or treatment decisions."
)

TRAINING_DATA_NOTE = (
    "ReliefF's copy of the training matrix, its labels and per-feature extremes are removed before saving; "
    "the SVM keeps its support vectors (standardised training rows, on the selected features only)"
)


@dataclass(frozen=True)
class PhantomFeatures:
    seed: int
    response: str
    features: dict[str, float]


def phantom_features(seed: int, shape: tuple[int, int, int], parameters: dict[str, Any]) -> PhantomFeatures | None:
    """Radiomics of a phantom's tumour as the server extracts them (same image type, geometry and code);
    None for a phantom without a tumour."""
    phantom = synthesize("osteosarcoma-mr", seed, shape)
    tumour = phantom.truth["tumour"]
    if int(tumour.sum()) == 0:
        return None
    affine = phantom.grid.affine_ras()
    image = image_from_array(phantom.volume, affine)
    mask = image_from_array(tumour, affine)
    features = extract_features(image, mask, parameters)
    return PhantomFeatures(seed, str(phantom.clinical["response"]), features)


def _collect(
    seeds: Iterable[int], count: int, shape: tuple[int, int, int], parameters: dict[str, Any], jobs: int
) -> list[PhantomFeatures]:
    """The first ``count`` phantoms with a tumour, in seed order."""
    collected: list[PhantomFeatures] = []
    iterator = iter(seeds)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        while len(collected) < count:
            batch = [next(iterator) for _ in range(count - len(collected))]
            results = pool.map(phantom_features, batch, [shape] * len(batch), [parameters] * len(batch))
            collected.extend(result for result in results if result is not None)
    return collected


def build_pipeline(spec: ClassifierSpec) -> Pipeline:
    """Standardise, select features with ReliefF, then an RBF SVM whose scores are calibrated (Platt)."""
    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("relieff", ReliefF(n_features_to_select=spec.n_features_to_select, n_neighbors=spec.n_neighbors)),
            ("svm", CalibratedClassifierCV(SVC(random_state=spec.random_state), ensemble=False, cv=spec.cv_folds)),
        ]
    )


def _usable_features(patients: Sequence[PhantomFeatures]) -> list[str]:
    """Features with a finite value for every training patient, in PyRadiomics' order."""
    names = list(patients[0].features)
    return [name for name in names if all(np.isfinite(p.features.get(name, np.nan)) for p in patients)]


def _matrix(patients: Sequence[PhantomFeatures], names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    features = np.array([[p.features[name] for name in names] for p in patients], dtype=np.float64)
    return features, np.array([p.response for p in patients])


def _figures(labels: np.ndarray, p_good: np.ndarray) -> dict[str, Any]:
    predicted = np.where(p_good >= 0.5, "good", "poor")
    good, poor = labels == "good", labels == "poor"
    return {
        # Undefined when only one class is present (a tiny held-out set).
        "auc": round(float(roc_auc_score(labels == POSITIVE, p_good)), 4) if good.any() and poor.any() else None,
        "accuracy": round(float(np.mean(predicted == labels)), 4),
        "sensitivity_good": round(float(np.mean(predicted[good] == "good")), 4),
        "specificity_good": round(float(np.mean(predicted[poor] == "poor")), 4),
        "n_good": int(good.sum()),
        "n_poor": int(poor.sum()),
    }


def _versions() -> dict[str, str]:
    names = ("scikit-learn", "skrebate", "skops", "pyradiomics-bhklab", "SimpleITK", "numpy")
    return {name: metadata.version(name) for name in names}


def _seed_span(seeds: list[int]) -> str:
    return f"{seeds[0]}-{seeds[-1]} ({len(seeds)} phantoms with a tumour)"


def _artefact_reference(artefact: Path) -> str:
    return artefact.name if artefact.parent == SHIPPED_ARTEFACTS_DIR else str(artefact)


def run(
    spec: ClassifierSpec = SPEC,
    jobs: int | None = None,
    config_dir: Path = CONFIG_DIR,
    artefact_dir: Path = SHIPPED_ARTEFACTS_DIR,
) -> dict[str, Any]:
    """Train, evaluate, save the artefact (training data stripped) and write the YAML; returns the YAML's fields."""
    jobs = jobs or min(2, os.cpu_count() or 1)
    logging.getLogger("radiomics").setLevel(logging.WARNING)  # it logs every filter of every patient at INFO
    parameters = builtin_preset(spec.preset)
    started = time.perf_counter()
    train = _collect(range(0, EVALUATION_SEED_START), spec.n_train, spec.shape, parameters, jobs)
    held_out = _collect(range(EVALUATION_SEED_START, 10**6), spec.n_held_out, spec.shape, parameters, jobs)
    extraction_s = time.perf_counter() - started
    logger.info("%s: features of %d + %d phantoms in %.0f s", spec.name, len(train), len(held_out), extraction_s)

    names = _usable_features(train)
    x_train, y_train = _matrix(train, names)
    x_held, y_held = _matrix(held_out, names)
    fit_started = time.perf_counter()
    folds = StratifiedKFold(spec.cv_folds, shuffle=True, random_state=spec.random_state)
    cv_proba = cross_val_predict(build_pipeline(spec), x_train, y_train, cv=folds, method="predict_proba")
    pipeline = build_pipeline(spec).fit(x_train, y_train)
    fit_s = time.perf_counter() - fit_started
    good = list(pipeline.classes_).index(POSITIVE)
    cv_classes = sorted(set(y_train))
    cv_figures = _figures(y_train, cv_proba[:, cv_classes.index(POSITIVE)])
    held_figures = _figures(y_held, pipeline.predict_proba(x_held)[:, good])
    selected = [names[i] for i in pipeline.named_steps["relieff"].top_features_[: spec.n_features_to_select]]

    artefact = artefact_dir / f"{spec.name}.skops"
    sha256 = save_artefact(pipeline, artefact)
    reloaded = load_artefact(artefact, sha256)  # what the server will load gives the same answers
    assert np.allclose(reloaded.predict_proba(x_held), pipeline.predict_proba(x_held))
    wall_s = time.perf_counter() - started
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu_s = sum(u.ru_utime + u.ru_stime for u in usage)  # the worker processes' time included
    train_seeds, held_seeds = [p.seed for p in train], [p.seed for p in held_out]
    fields: dict[str, Any] = {
        "kind": "classification",
        "name": spec.name,
        "version": spec.version,
        "labels": list(spec.labels),
        "input": {"preset": spec.preset, "features": names, "csv_upload": True},
        # Shipped artefacts are named relative to apps/awesomme/model/, any other by its full path.
        "artefact": {"file": _artefact_reference(artefact), "sha256": sha256, "format": "skops"},
        "cohorts": list(spec.cohorts),
        "demo": True,
        "intended_use": INTENDED_USE,
        "training": {
            "data": "synthetic osteosarcoma MR phantoms from awesomme.phantoms (no patient data); tumour mask from "
            "the phantom's truth; response (good/poor) from its truth/clinical.json",
            "seeds": _seed_span(train_seeds),
            "phantom_shape": list(spec.shape),
            "n_patients": len(train),
            "n_good": int(np.sum(y_train == "good")),
            "n_poor": int(np.sum(y_train == "poor")),
            "preset": spec.preset,
            "preset_parameters_sha256": hashlib.sha256(json.dumps(parameters, sort_keys=True).encode()).hexdigest(),
            "n_features_extracted": len(names),
            "pipeline": "StandardScaler -> skrebate ReliefF -> CalibratedClassifierCV(SVC rbf, sigmoid, "
            f"ensemble=False, cv={spec.cv_folds})",
            "relieff": {"n_features_to_select": spec.n_features_to_select, "n_neighbors": spec.n_neighbors},
            "selected_features": selected,
            "random_state": spec.random_state,
            "training_data_in_artefact": TRAINING_DATA_NOTE,
            "artefact_bytes": artefact.stat().st_size,
            "extraction_s": round(extraction_s, 1),
            "fit_and_cv_s": round(fit_s, 1),
            "wall_time_s": round(wall_s, 1),
            "cpu_time_s": round(cpu_s, 1),
            "machine": f"{os.cpu_count()}-core CPU, {jobs} worker processes",
            "python": platform.python_version(),
            "versions": _versions(),
            "script": f"python -m awesomme.training --model {spec.name}",
        },
        "validation": {
            "cross_validated": {"method": f"stratified {spec.cv_folds}-fold on the training phantoms", **cv_figures},
            "held_out": {
                "data": "held-out phantoms (seeds >= 50000, never used for fitting or tuning)",
                "seeds": _seed_span(held_seeds),
                **held_figures,
            },
            "threshold": "label = the more probable class (p >= 0.5)",
        },
    }
    ClassificationModelConfig(**fields)  # the YAML must load
    header = (
        f"# {spec.name}: written by `python -m awesomme.training --model {spec.name}` (artefact sha256, "
        "training facts and validation figures are measured, not typed in).\n"
    )
    (config_dir / f"{spec.name}.yaml").write_text(header + yaml.safe_dump(fields, sort_keys=False, width=120))
    return fields
