"""A small training loop: Dice + cross-entropy (MONAI), Adam, a wall-time budget; deterministic on the CPU."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch
from monai.losses import DiceCELoss

__all__ = ["Batch", "TrainResult", "seed_everything", "train"]

logger = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, torch.Tensor]  # images (B, 1, ...) float, labels (B, 1, ...) int64


@dataclass
class TrainResult:
    iterations: int
    wall_s: float
    losses: list[float] = field(default_factory=list)  # one per iteration
    stopped_by: str = "iterations"  # "iterations" or "budget"

    def mean_loss(self, first: int, last: int) -> float:
        """Mean loss over iterations [first, last)."""
        window = self.losses[first:last]
        return float(np.mean(window)) if window else float("nan")


def seed_everything(seed: int, threads: int = 2, deterministic: bool = True) -> np.random.Generator:
    """Fix torch, numpy and python seeds and the CPU thread count; returns the numpy generator to sample with.

    ``deterministic=False`` (a GPU) lets cuDNN pick its fastest kernels, some of which sum in varying order.
    """
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.benchmark = not deterministic
    return np.random.default_rng(seed)


def train(
    network: torch.nn.Module,
    next_batch: Callable[[], Batch],
    *,
    max_iterations: int,
    budget_s: float,
    learning_rate: float = 1e-3,
    weight_decay: float = 1e-5,
    log_every: int = 50,
    lr_decay_at: float = 0.75,
    device: torch.device | str = "cpu",
    prefetch: bool | None = None,
) -> TrainResult:
    """Train ``network`` in place on batches from ``next_batch`` until ``max_iterations`` or ``budget_s``.

    The learning rate drops tenfold once ``lr_decay_at`` of the budget (time or iterations, whichever comes
    first) is used.  Deterministic for a fixed seed and batch source when the budget is not what stops it.
    With ``prefetch`` (the default on another ``device`` than the CPU) the next batch is drawn on a CPU thread
    while the device computes, in the same order; the network comes back to the CPU at the end.
    """
    device = torch.device(device)
    prefetch = device.type != "cpu" if prefetch is None else prefetch
    network.to(device)
    loss_function = DiceCELoss(to_onehot_y=True, softmax=True, batch=True)
    optimiser = torch.optim.Adam(network.parameters(), lr=learning_rate, weight_decay=weight_decay)
    network.train()
    result = TrainResult(iterations=0, wall_s=0.0)
    start = time.perf_counter()
    decayed = False
    drawing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batches") if prefetch else None
    upcoming: Future[Batch] | None = drawing.submit(next_batch) if drawing else None
    for iteration in range(max_iterations):
        elapsed = time.perf_counter() - start
        if elapsed >= budget_s:
            result.stopped_by = "budget"
            break
        if not decayed and (elapsed >= lr_decay_at * budget_s or iteration >= lr_decay_at * max_iterations):
            for group in optimiser.param_groups:
                group["lr"] = learning_rate * 0.1
            decayed = True
            logger.info("iteration %d: learning rate %.2e", iteration, learning_rate * 0.1)
        if drawing and upcoming:
            images, labels = upcoming.result()
            upcoming = drawing.submit(next_batch)
            images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        else:
            images, labels = next_batch()
        optimiser.zero_grad(set_to_none=True)
        loss = loss_function(network(images), labels)
        loss.backward()
        optimiser.step()
        result.losses.append(float(loss.detach()))  # on a GPU this waits for the step: keeps the budget honest
        result.iterations = iteration + 1
        if log_every and (iteration + 1) % log_every == 0:
            recent = result.mean_loss(iteration + 1 - log_every, iteration + 1)
            logger.info("iteration %d  loss %.4f  %.0f s", iteration + 1, recent, time.perf_counter() - start)
    result.wall_s = time.perf_counter() - start
    if drawing:
        drawing.shutdown(wait=True, cancel_futures=True)
    network.cpu().eval()
    return result
