"""The training loop: the loss goes down on a tiny problem, runs are reproducible, the budget is honoured."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from monai.networks.nets import UNet

from awesomme.training.loop import Batch, seed_everything, train


def _tiny_problem(seed: int) -> tuple[torch.nn.Module, Callable[[], Batch]]:
    rng = seed_everything(seed)
    network = UNet(spatial_dims=2, in_channels=1, out_channels=2, channels=(4, 8), strides=(2,), num_res_units=0)

    def next_batch() -> Batch:
        labels = np.zeros((4, 1, 16, 16), np.int64)
        for label in labels:
            y, x = rng.integers(2, 10, size=2)
            label[0, y : y + 5, x : x + 5] = 1
        images = labels.astype(np.float32) + 0.1 * rng.standard_normal(labels.shape).astype(np.float32)
        return torch.from_numpy(images), torch.from_numpy(labels)

    return network, next_batch


def test_loss_decreases_on_a_tiny_problem() -> None:
    network, next_batch = _tiny_problem(0)
    result = train(network, next_batch, max_iterations=60, budget_s=60, learning_rate=1e-2, log_every=0)
    assert result.iterations == 60 and result.stopped_by == "iterations"
    assert result.mean_loss(50, 60) < 0.7 * result.mean_loss(0, 10)
    assert not network.training  # left in eval mode


def test_training_is_deterministic() -> None:
    states = []
    for _ in range(2):
        network, next_batch = _tiny_problem(5)
        result = train(network, next_batch, max_iterations=8, budget_s=60, log_every=0)
        states.append((result.losses, network.state_dict()))
    assert states[0][0] == states[1][0]
    for key, value in states[0][1].items():
        assert torch.equal(value, states[1][1][key]), key


def test_budget_stops_training() -> None:
    network, next_batch = _tiny_problem(1)
    result = train(network, next_batch, max_iterations=10_000, budget_s=0.5, log_every=0)
    assert result.stopped_by == "budget"
    assert 0 < result.iterations < 10_000


def test_drawing_the_next_batch_ahead_changes_nothing_but_the_timing() -> None:
    runs = []
    for prefetch in (False, True):
        network, next_batch = _tiny_problem(7)
        result = train(network, next_batch, max_iterations=6, budget_s=60, log_every=0, prefetch=prefetch)
        runs.append((result.losses, network.state_dict()))
    assert runs[0][0] == runs[1][0]
    for key, value in runs[0][1].items():
        assert torch.equal(value, runs[1][1][key]), key
