"""MONAI Label's endpoints, off the event loop.

MONAI Label declares its endpoints ``async def`` and does their work (inference, test-time augmentation, SEG
encoding, Orthanc round trips) without awaiting: each held the event loop for its whole length, and the server
answered nothing else meanwhile (a 2.2 s inference: 2.1 s without a health check, a login or a viewer's DICOMweb).
Here each endpoint's body runs on a thread; FastAPI still resolves its parameters and dependencies (our access
check, the caller's identity) on the loop, and context variables go with the body.

- Endpoints that run networks (``MODEL_ENDPOINT_MODULES``) take turns on one long-lived thread, the model thread,
  which applies torch's thread settings when it starts (``awesomme.inference.threads``): each prediction already
  uses every core torch is given, so two at once would only share the cores and hold two peaks of memory.
- The others (datastore, training and model files, sessions) run in the server's thread pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute, APIRouter

from awesomme.inference.threads import start_model_thread

__all__ = ["MODEL_ENDPOINT_MODULES", "MONAILABEL_ENDPOINTS", "model_thread", "off_the_event_loop"]

MONAILABEL_ENDPOINTS = "monailabel.endpoints."
# MONAI Label's endpoint modules whose work runs a network (in this process when asked to run synchronously)
MODEL_ENDPOINT_MODULES = frozenset(
    MONAILABEL_ENDPOINTS + name for name in ("infer", "activelearning", "scoring", "batch_infer", "wsi_infer")
)

Endpoint = Callable[..., Coroutine[Any, Any, Any]]

_model_thread: ThreadPoolExecutor | None = None
_model_thread_lock = threading.Lock()
_loops = threading.local()


def model_thread() -> ThreadPoolExecutor:
    """The one long-lived thread that runs the model endpoints, with all of torch's intra-op threads (the first
    call gives the calling thread, and threads started later, one: see ``awesomme.inference.threads``)."""
    global _model_thread
    with _model_thread_lock:
        if _model_thread is None:
            _model_thread = start_model_thread()
        return _model_thread


def _complete(endpoint: Endpoint, arguments: dict[str, Any]) -> Any:
    """``endpoint(**arguments)`` run to its end on this thread's own event loop (MONAI Label's never wait on one)."""
    loop = getattr(_loops, "loop", None)
    if loop is None:
        loop = _loops.loop = asyncio.new_event_loop()
    return loop.run_until_complete(endpoint(**arguments))


def _on_model_thread(endpoint: Endpoint) -> Endpoint:
    @functools.wraps(endpoint)
    async def run(**arguments: Any) -> Any:
        work = functools.partial(contextvars.copy_context().run, _complete, endpoint, arguments)
        return await asyncio.wrap_future(model_thread().submit(work))

    return run


def _in_thread_pool(endpoint: Endpoint) -> Endpoint:
    @functools.wraps(endpoint)
    async def run(**arguments: Any) -> Any:
        return await run_in_threadpool(_complete, endpoint, arguments)  # copies the context itself

    return run


def _routes(router: APIRouter) -> list[APIRoute]:
    """Every endpoint route of ``router``, those of the routers it includes too."""
    found: list[APIRoute] = []
    for route in router.routes:
        included = getattr(route, "original_router", None)  # FastAPI keeps included routers as such
        if isinstance(included, APIRouter):
            found += _routes(included)
        elif isinstance(route, APIRoute):
            found.append(route)
    return found


def _model_thread_first(app: FastAPI) -> None:
    """The model thread starts when the server does, before MONAI Label loads the models on the loop's thread."""
    starting = app.router.lifespan_context
    if getattr(starting, "starts_model_thread", False):
        return

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        model_thread()
        async with starting(app) as state:
            yield state

    lifespan.starts_model_thread = True  # type: ignore[attr-defined]
    app.router.lifespan_context = lifespan


def off_the_event_loop(app: FastAPI) -> list[str]:
    """Move the bodies of MONAI Label's coroutine endpoints off the event loop; returns the paths moved.

    The route itself is kept (its parameters, body limits and OpenAPI description stay as MONAI Label made them):
    only the call FastAPI makes once the parameters are resolved is swapped, for a coroutine that awaits the
    body's end on a thread. Idempotent.
    """
    _model_thread_first(app)
    moved = []
    for route in _routes(app.router):
        endpoint = route.dependant.call
        module = getattr(endpoint, "__module__", "") or ""
        if not module.startswith(MONAILABEL_ENDPOINTS) or not inspect.iscoroutinefunction(endpoint):
            continue
        if getattr(endpoint, "__wrapped__", None) is not None:
            continue  # moved already
        wrap = _on_model_thread if module in MODEL_ENDPOINT_MODULES else _in_thread_pool
        route.dependant.call = route.endpoint = wrap(endpoint)
        moved.append(route.path)
    return moved
