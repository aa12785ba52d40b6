"""Fine-tune a segmentation model on the final labels in the datastore (MONAI Label's /train).

New weights go to ``var/models/<name>/<version>/`` with their sha256 and a YAML for that version; the shipped
weights are never touched. ``AWESOMME_MODEL_VERSIONS`` picks the version that serves.
"""

from __future__ import annotations

import copy
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.train import TrainTask

from awesomme.core.checksums import sha256_of
from awesomme.core.errors import InvalidInput
from awesomme.inference.predict import to_network_axes
from awesomme.inference.registry import LoadedModel
from awesomme.orthanc.datastore import OrthancDatastore
from awesomme.training.data import patient_arrays, sample_patches, sample_slices
from awesomme.training.loop import seed_everything, train

logger = logging.getLogger(__name__)
DEFAULTS = {"max_seconds": 120.0, "max_iterations": 300, "batch_size": 4, "learning_rate": 1e-4, "seed": 0}


class SegmentationTrainer(TrainTask):
    def __init__(self, model: LoadedModel, models_dir: Path) -> None:
        super().__init__(f"Fine-tune {model.config.name} on the final labels of {model.config.modality} series")
        self.model = model
        self.models_dir = models_dir
        self._stats: dict[str, Any] = {}

    def config(self) -> dict[str, Any]:
        return dict(DEFAULTS)

    def stats(self) -> dict[str, Any]:
        return self._stats

    def _mask(self, datastore: OrthancDatastore, record: Any) -> np.ndarray:
        """The label's voxels for this model's structure: the segment of the same name, or a lone segment."""
        label_map = datastore.label_map(record)
        wanted = {name.lower() for name in self.model.config.labels}
        numbers = [s["number"] for s in record.segments if str(s.get("label", "")).lower() in wanted]
        if not numbers and len(record.segments) == 1:
            numbers = [record.segments[0]["number"]]
        return np.isin(label_map, numbers).astype(np.uint8)

    def __call__(self, request: dict[str, Any], datastore: Datastore) -> dict[str, Any]:
        assert isinstance(datastore, OrthancDatastore)
        config = self.model.config
        options = {**DEFAULTS, **{k: request[k] for k in DEFAULTS if k in request}}
        records = datastore.final_labels(config.modality)
        if not records:
            raise InvalidInput(f"no final label on any {config.modality} series: nothing to train {config.name} on")
        patients = []
        for index, record in enumerate(records):
            volume = datastore.load_volume(datastore.image_state(record.source_series_uid))
            patients.append(patient_arrays(volume.array, self._mask(datastore, record), config, seed=index))
        rng = seed_everything(int(options["seed"]))
        network = copy.deepcopy(self.model.network)
        axes = config.inference.axes
        roi = tuple(config.inference.roi_size)
        roi = roi if axes == "zyx" else roi[::-1]  # patches are cut in (slice, row, column) order
        batch = int(options["batch_size"])

        def next_batch() -> tuple[torch.Tensor, torch.Tensor]:
            if config.inference.mode == "slices":
                images, labels = sample_slices(patients, roi, batch, rng)  # type: ignore[arg-type]
            else:
                images, labels = sample_patches(patients, roi, batch, rng)  # type: ignore[arg-type]
            spatial = len(roi)
            return to_network_axes(images, axes, spatial), to_network_axes(labels, axes, spatial)

        result = train(
            network,
            next_batch,
            max_iterations=int(options["max_iterations"]),
            budget_s=float(options["max_seconds"]),
            learning_rate=float(options["learning_rate"]),
            device=next(self.model.network.parameters()).device,  # where the model serves (AWESOMME_DEVICE)
        )
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        version = f"{config.version.split('+')[0]}+train.{stamp}"
        folder = self.models_dir / config.name / version
        folder.mkdir(parents=True, exist_ok=False)
        weights = folder / "weights.pt"
        torch.save(network.state_dict(), weights)
        digest = sha256_of(weights)
        (folder / "weights.pt.sha256").write_text(f"{digest}  weights.pt\n")
        trained = config.model_copy(
            update={
                "version": version,
                "weights": config.weights.model_copy(update={"file": str(weights), "sha256": digest}),
                "training": {
                    "data": f"final labels of {len(records)} {config.modality} series in the datastore",
                    "labels": [r.seg_series_uid for r in records],
                    "fine_tuned_from": config.version,
                    "iterations": result.iterations,
                    "wall_s": round(result.wall_s, 1),
                    "seed": int(options["seed"]),
                    "finished": stamp,
                },
                "validation": {"note": "not validated: fine-tuned on the platform's labels"},
            }
        )
        document = trained.model_dump(mode="json", exclude={"source"})
        (folder / f"{config.name}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
        self._stats = {
            "name": config.name,
            "version": version,
            "sha256": digest,
            "labels_used": len(records),
            "iterations": result.iterations,
            "loss_first": round(result.mean_loss(0, 10), 4),
            "loss_last": round(result.mean_loss(max(0, result.iterations - 10), result.iterations), 4),
            "wall_s": round(result.wall_s, 1),
            "finished_at": time.time(),
        }
        logger.info("Trained %s %s: %s", config.name, version, self._stats)
        return self._stats
