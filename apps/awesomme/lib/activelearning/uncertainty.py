"""Active learning: the unlabelled series a model is least sure about (test-time augmentation)."""

from __future__ import annotations

import logging
import random
import threading
from typing import Any

from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.strategy import Strategy

from awesomme.core.errors import InvalidInput, NotFound
from awesomme.inference.registry import ModelRegistry
from awesomme.inference.uncertainty import tta_uncertainty
from awesomme.orthanc.datastore import OrthancDatastore

logger = logging.getLogger(__name__)
# Scoring runs the model four times a series: look at a bounded sample of candidates per request.
DEFAULT_CANDIDATES = 8
MAX_CANDIDATES = 32


def candidate_count(value: Any) -> int:
    """How many series to score (each costs four forward passes): 1 to ``MAX_CANDIDATES``, else 422."""
    if value is None:
        return DEFAULT_CANDIDATES
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CANDIDATES:
        raise InvalidInput(f"candidates must be a whole number from 1 to {MAX_CANDIDATES}")
    return value


class TTAUncertainty(Strategy):
    def __init__(self, registry: ModelRegistry) -> None:
        super().__init__(
            "The unlabelled series a model (param 'model', else one bound to your cohorts) is least sure about"
        )
        self.registry = registry
        self._scores: dict[tuple[str, str, str, str], float] = {}  # (series, its version, model, model version)
        self._lock = threading.Lock()

    def __call__(self, request: dict[str, Any], datastore: Datastore) -> dict[str, Any] | None:
        assert isinstance(datastore, OrthancDatastore)
        name = request.get("model")
        if not name or not isinstance(name, str):
            raise InvalidInput("the uncertainty strategy runs a model: name it with the parameter 'model'")
        model = self.registry.models.get(name)
        if model is None:
            raise NotFound(f"no model {name[:64]}")
        limit = candidate_count(request.get("candidates"))
        of_modality = datastore.images_of(model.config.modality)
        candidates = [uid for uid in datastore.get_unlabeled_images(request.get("label_tag")) if uid in of_modality]
        candidates = random.Random(0).sample(candidates, min(limit, len(candidates)))  # noqa: S311 - sampling, not secrets
        scored = {uid: self._score(datastore, model, uid) for uid in candidates}
        if not scored:
            return None
        chosen = max(scored, key=lambda uid: scored[uid])
        logger.info("Uncertainty (%s): chose %s at %.4f among %d series", name, chosen, scored[chosen], len(scored))
        return {"id": chosen, "uncertainty": scored[chosen], "model": name}

    def _score(self, datastore: OrthancDatastore, model: Any, uid: str) -> float:
        state = datastore.image_state(uid)
        key = (uid, state.version, model.config.name, model.config.version)
        with self._lock:
            if key in self._scores:
                return self._scores[key]
        volume = datastore.load_volume(state)
        score = tta_uncertainty(model.network, volume.array, model.config, volume.affine)
        with self._lock:
            self._scores[key] = score
        return score
