"""/train on this CPU: a short fine-tuning on the datastore's final labels, written as a new model version."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import yaml

from awesomme.core.checksums import sha256_of
from awesomme.core.config import Settings
from awesomme.inference.config import SegmentationModelConfig
from awesomme.inference.network import load_network
from awesomme.inference.registry import ModelRegistry
from tests.integration.conftest import Account, StoredPatient, monailabel_client


def _wait_for_training(http: httpx.Client, timeout_s: float = 600) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        task = http.get("/train/").json()
        if task.get("status") in ("DONE", "ERROR"):
            return task
        time.sleep(1)
    raise TimeoutError("training did not finish")


def test_training_writes_a_new_version_and_never_touches_the_shipped_weights(
    platform: Settings, http: httpx.Client, server_url: str, mr_patient: StoredPatient, tmp_path: Path, admin: Account
) -> None:
    client = monailabel_client(server_url, admin, tmp_path)
    label = client.save_label(
        mr_patient.patient.series_uid,
        str(mr_patient.patient.truth["tumour"]),
        tag="final",
        params={"label_info": [{"name": "tumour", "idx": 1}]},
    )
    configs_dir = Path(platform.infer_configs_dir)
    shipped = configs_dir / "everything_mr.pt"
    shipped_digest = sha256_of(shipped)

    reply = http.post("/train/everything_mr", json={"max_seconds": 20, "max_iterations": 6, "batch_size": 2})
    assert reply.status_code == 200, reply.text
    task = _wait_for_training(http)
    assert task["status"] == "DONE", "\n".join(task.get("details", [])[-30:])

    versions = list((platform.models_dir / "everything_mr").iterdir())
    assert len(versions) == 1
    folder = versions[0]
    trained = SegmentationModelConfig(**yaml.safe_load((folder / "everything_mr.yaml").read_text()))
    assert trained.version.startswith("0.0.1+train.")
    assert trained.weights.sha256 == sha256_of(folder / "weights.pt")
    assert trained.training["iterations"] == 6
    assert label["label"] in trained.training["labels"]  # trained on the label just saved (a final label)
    load_network(trained)
    assert sha256_of(shipped) == shipped_digest

    registry = ModelRegistry.load(configs_dir, {"everything_mr": trained.version}, platform.models_dir)
    assert registry.models["everything_mr"].config.version == trained.version
    missing = ModelRegistry.load(configs_dir, {"everything_mr": "9.9.9"}, platform.models_dir)
    assert "everything_mr" not in missing.models
    assert any("9.9.9" in source for source in missing.problems)


def test_training_without_labels_of_the_modality_is_refused(http: httpx.Client) -> None:
    def ct_labels() -> list[str]:
        objects = http.get("/datastore/", params={"output": "all"}).json()["objects"]
        return [
            label["info"]["SeriesInstanceUID"]
            for item in objects.values()
            if item["image"]["info"]["Modality"] == "CT"
            for label in item["labels"].values()
        ]

    for _ in range(20):  # a series shows its newest label per tag: delete until none is left
        if not (remaining := ct_labels()):
            break
        for seg_uid in remaining:
            assert http.delete("/datastore/label", params={"id": seg_uid, "tag": "final"}).status_code == 200
    assert ct_labels() == []
    reply = http.post("/train/nothing_ct", json={"max_seconds": 5}, params={"run_sync": True})
    assert reply.status_code == 422
    assert "no final label" in reply.json()["detail"]
