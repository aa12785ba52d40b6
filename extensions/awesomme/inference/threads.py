"""One thread runs the predictions in parallel: the others keep one intra-op thread each.

torch (on GNU OpenMP, as its Linux wheels are) gives every thread that runs a parallel region a team of OpenMP
workers of its own, kept for that thread's life. Between regions the workers spin for a few milliseconds before
they sleep, unless the process holds more such workers than the machine has cores: then libgomp throttles every
team to a hundred spins, and each region ends and starts with a sleep and a wake-up. So once a second thread has
had a team (the event loop's thread loading the models, say) predictions on the model thread sleep and wake at
every operator: the 16x512x512 Table-3 forward pass on 2 cores went from about 40 voluntary context switches to
about 3 300 with one window at a time (about 500 with two side by side), which cost the earlier move off the event
loop its Table-3 speed. Hence: the model thread takes the process's intra-op thread count, and every other thread
(the event loop's, the request threads', those started later) one, so the model thread's team is the only one.

torch keeps a thread's count once that thread has used it; a thread that starts later takes the count last set by
any thread (``torch.set_num_threads`` sets both): ``restore_for_new_threads`` puts the latter back after threads
set their own.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import torch

__all__ = ["OTHER_THREADS", "model_threads", "restore_for_new_threads", "start_model_thread"]

OTHER_THREADS = 1  # intra-op threads of every thread but the model thread

_for_new_threads: int | None = None  # what threads starting later take, once start_model_thread has set it
_model_threads: int | None = None  # the model thread's count, once start_model_thread has set it


def model_threads() -> int:
    """The intra-op threads predictions run with: the model thread's, or this thread's where there is none.

    Networks are built on another thread than the one that runs them (the app loads its models on the event
    loop's thread, which keeps one), so what a prediction may use is asked here, not of the building thread."""
    return _model_threads if _model_threads is not None else torch.get_num_threads()


def restore_for_new_threads(caller_threads: int) -> None:
    """Once threads have set their own counts: threads starting later take ``start_model_thread``'s count again
    (without one, the caller's ``caller_threads``, set on the caller)."""
    if _for_new_threads is None:
        torch.set_num_threads(caller_threads)
        return
    # set from a passing thread: the only way that leaves every running thread's own count alone
    passing = threading.Thread(target=torch.set_num_threads, args=(_for_new_threads,), name="torch-threads")
    passing.start()
    passing.join()


def start_model_thread(name: str = "models") -> ThreadPoolExecutor:
    """A one-thread executor with all the process's intra-op threads; the calling thread and any thread started
    later get ``OTHER_THREADS``. Call it before the models load (that runs torch on the calling thread)."""
    global _for_new_threads, _model_threads
    threads = torch.get_num_threads()  # the process's count (torch's default: the cores it may use)
    _model_threads = threads
    executor = ThreadPoolExecutor(
        max_workers=1, thread_name_prefix=name, initializer=torch.set_num_threads, initargs=(threads,)
    )
    executor.submit(int).result()  # started, its count set, before the others change theirs
    torch.set_num_threads(OTHER_THREADS)  # this thread's, and the one later threads take
    _for_new_threads = OTHER_THREADS
    return executor
