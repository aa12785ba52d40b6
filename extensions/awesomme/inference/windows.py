"""The windows of one sliding-window batch side by side on a CPU, each on its own thread and share of the cores.

One forward call over a batch of windows runs every operator on all of them with all threads; on a few cores the
layers with few channels (normalisation, activations, the last up-convolution) keep the threads poorly busy and the
larger working set falls out of the caches. Single-window calls on separate threads, each with its share of the
intra-op threads, measured 1.1-1.2x faster on 2 cores for the Table-3 UNet (benchmarks/table3.py). Each window's
output depends on that window only, so the result is the batch's, up to float rounding.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import torch

from awesomme.inference.threads import model_threads, restore_for_new_threads

__all__ = ["side_by_side"]

_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool(workers: int, threads_each: int) -> ThreadPoolExecutor:
    with _pools_lock:
        pool = _pools.get((workers, threads_each))
        if pool is None:
            pool = _pools[(workers, threads_each)] = _start_pool(workers, threads_each)
        return pool


def _start_pool(workers: int, threads_each: int) -> ThreadPoolExecutor:
    """Worker threads with ``threads_each`` intra-op threads each, the process's default left as it was.

    torch's count is per thread once a thread has started using it, but ``set_num_threads`` also sets the default
    that threads starting later take (a server's request threads): each worker first takes its own count, and
    once all have, the default is put back (``awesomme.inference.threads``).
    """
    default = torch.get_num_threads()
    ready = threading.Barrier(workers + 1)

    def start() -> None:
        torch.get_num_threads()  # this thread now keeps its own count
        torch.set_num_threads(threads_each)
        ready.wait()

    pool = ThreadPoolExecutor(workers, thread_name_prefix="windows", initializer=start)
    for _ in range(workers):  # each blocks in ``start`` until all are there: one thread per submit
        pool.submit(int)
    ready.wait()
    restore_for_new_threads(default)
    return pool


def side_by_side(network: torch.nn.Module, batch_size: int) -> torch.nn.Module:
    """``network``, or a callable running a batch's windows on up to ``batch_size`` threads (CPU networks only)."""
    threads = model_threads()
    workers = min(batch_size, threads)
    on_cpu = all(parameter.device.type == "cpu" for parameter in network.parameters())
    if workers < 2 or not on_cpu:
        return network
    return _SideBySide(network, workers, threads // workers)


class _SideBySide(torch.nn.Module):
    def __init__(self, network: torch.nn.Module, workers: int, threads_each: int) -> None:
        super().__init__()
        self.network = network
        self.workers = workers
        self.threads_each = threads_each

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        if batch.shape[0] < 2:  # a lone window (the last of a pass) keeps all of the caller's threads
            return self.network(batch)
        inference = torch.is_inference_mode_enabled()
        grad = torch.is_grad_enabled()

        def run(chunk: torch.Tensor) -> torch.Tensor:
            # grad and inference modes are per thread: the worker takes the caller's
            with torch.inference_mode(inference), torch.set_grad_enabled(grad):
                return self.network(chunk)

        chunks = torch.tensor_split(batch, min(self.workers, batch.shape[0]))
        return torch.cat(list(self.pool.map(run, chunks)))

    @property
    def pool(self) -> ThreadPoolExecutor:
        return _pool(self.workers, self.threads_each)
