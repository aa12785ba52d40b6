"""The batch runner: one thread in the server, the only writer of batch items' states, and the Dask cluster it uses.

At start, items left ``running`` by a crash go back to ``pending`` and unfinished batches go on. The runner claims
pending items of pending or running batches, hands them to Dask workers (a LocalCluster of worker processes it
starts at the first batch and closes after ``AWESOMME_DASK_IDLE_S`` idle seconds, or a site's scheduler over TLS),
and stores what comes back: SEGs through the platform's SEG store, feature sets through the radiomics service.
Outputs are derived from the batch and the item (``batches.output_uid``), and what exists is never made again, so
an item that ran twice (a crash between storing and recording) stores nothing twice. Classification items take
milliseconds: the runner runs them itself.

The cluster is started by the runner thread, which the server's entry point starts (``awesomme serve``): worker
processes are spawned, and spawning from a module being imported fails.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pydicom
from sqlalchemy import select, update

from awesomme.core.audit import AuditContext, audit_context
from awesomme.core.config import Settings, get_settings
from awesomme.core.db import session_scope
from awesomme.core.errors import AwesommeError
from awesomme.core.visibility import Principal, cohorts_of_series, load_principal, visibility_of
from awesomme.inference.registry import get_registry
from awesomme.models import Batch, BatchItem, FeatureSet, Prediction, Segmentation, SegmentationOperation, User
from awesomme.orthanc.cache import SeriesCache
from awesomme.orthanc.client import get_client
from awesomme.services import batch_tasks, batches, predictions, radiomics
from awesomme.services.cohorts import bound_cohorts
from awesomme.services.seg_store import SegStore

__all__ = ["BatchRunner", "recover", "start_runner"]

logger = logging.getLogger(__name__)
POLL_S = 2.0


def recover() -> int:
    """After a crash: items left running go back to pending (their batches go on). Returns how many."""
    with session_scope() as session:
        result = session.execute(
            update(BatchItem).where(BatchItem.status == "running").values(status="pending", updated_at=_now())
        )
        return int(getattr(result, "rowcount", 0) or 0)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _InFlight:
    item_id: int
    batch_id: int
    started: float


class _Cluster:
    """The Dask client, and the LocalCluster behind it when the platform runs its own."""

    def __init__(self, settings: Settings) -> None:
        import dask
        from distributed import Client, LocalCluster
        from distributed.security import Security

        self.cluster: Any = None
        if settings.dask_scheduler:  # a site's cluster: tls:// only (the settings refuse anything else)
            security = Security(
                tls_ca_file=settings.dask_tls_ca or None,
                tls_client_cert=settings.dask_tls_cert or None,
                tls_client_key=settings.dask_tls_key or None,
                require_encryption=True,
            )
            self.client = Client(settings.dask_scheduler, security=security, timeout=30)
            logger.info("Batches: connected to the Dask scheduler %s", settings.dask_scheduler)
        else:
            security = Security.temporary()  # in-memory certificates: no other local account can submit work
            # Dask's nodes always listen for HTTP too (dashboard, cluster state as JSON, metrics): no routes at all,
            # on a random loopback port, so that no other local account reads the cluster's state either.
            # The scheduler's and workers' scratch space (locks, spilled data) in the disposable cache, not in the
            # server's tmp folder.
            scratch = str(settings.var_dir / "cache" / "dask")
            with dask.config.set({"distributed.scheduler.http.routes": [], "temporary-directory": scratch}):
                self.cluster = LocalCluster(
                    n_workers=settings.dask_workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    protocol="tls://",
                    security=security,
                    dashboard_address="127.0.0.1:0",
                    scheduler_kwargs={"dashboard": False},
                    worker_dashboard_address="127.0.0.1:0",
                    env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
                    local_directory=scratch,
                    config={"distributed": _without_worker_http_routes(dask.config.get("distributed"))},
                )
            self.client = Client(self.cluster, security=security)
        self.workers = max(1, len(self.client.scheduler_info().get("workers", {})))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close()


def _without_worker_http_routes(distributed: dict[str, Any]) -> dict[str, Any]:
    """Dask's ``distributed`` settings with no HTTP routes on workers (a Nanny replaces the whole top-level key)."""
    settings = copy.deepcopy(distributed)
    settings["worker"]["http"]["routes"] = []
    return settings


class BatchRunner:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cluster: _Cluster | None = None
        self._futures: dict[Any, _InFlight] = {}
        self._idle_since = time.monotonic()
        self._seg_store = SegStore(get_client(), SeriesCache(self.settings.cache_dir, self.settings.cache_max_bytes))

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def start(self) -> threading.Thread:
        recovered = recover()
        if recovered:
            logger.info("Batches: %d items left running by the last run are pending again", recovered)
        self._thread = threading.Thread(target=self._loop, name="batch-runner", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        batches.wake()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._close_cluster()

    def _close_cluster(self) -> None:
        if self._cluster is not None:
            logger.info("Batches: closing the Dask cluster")
            self._cluster.close()
            self._cluster = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self._step()
            except Exception:  # the runner must outlive any one failure (the DB away a moment, a cluster error)
                logger.exception("Batch runner step failed")
                busy = False
                time.sleep(POLL_S)
            if not busy:
                if self._cluster is not None and time.monotonic() - self._idle_since > self.settings.dask_idle_s:
                    self._close_cluster()
                batches.wake_event.wait(POLL_S)
                batches.wake_event.clear()

    def _step(self) -> bool:
        """Collect finished items, start new ones; True while there is work in flight."""
        self._collect()
        self._dispatch()
        if self._futures:
            self._idle_since = time.monotonic()
            from distributed import wait

            with contextlib.suppress(TimeoutError):  # nothing finished yet: look for new work meanwhile
                wait(list(self._futures), timeout=POLL_S, return_when="FIRST_COMPLETED")
            return True
        self._finish_batches()
        return False

    def _ensure_cluster(self) -> _Cluster:
        if self._cluster is None:
            started = time.perf_counter()
            self._cluster = _Cluster(self.settings)
            logger.info(
                "Batches: Dask cluster with %d workers ready in %.2f s",
                self._cluster.workers,
                time.perf_counter() - started,
            )
        return self._cluster

    # -- claiming and submitting ----------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        capacity = 2 * (self._cluster.workers if self._cluster else self.settings.dask_workers)
        room = capacity - len(self._futures)
        if room <= 0:
            return
        with session_scope() as session:
            live = list(
                session.scalars(select(Batch).where(Batch.status.in_(("pending", "running"))).order_by(Batch.id))
            )
            for batch in live:
                if batch.status == "pending":  # new, or resumed: its failed items run again
                    session.execute(
                        update(BatchItem)
                        .where(BatchItem.batch_id == batch.id, BatchItem.status == "failed")
                        .values(status="pending", updated_at=_now())
                    )
                    batch.status = "running"
                    batch.started_at = batch.started_at or _now()
            session.flush()
            claims: list[tuple[Batch, BatchItem]] = []
            for batch in live:
                if room <= len(claims):
                    break
                pending = session.scalars(
                    select(BatchItem)
                    .where(BatchItem.batch_id == batch.id, BatchItem.status == "pending")
                    .order_by(BatchItem.id)
                    .limit(room - len(claims))
                )
                claims += [(batch, item) for item in pending]
            for batch, item in claims:
                try:
                    with session.begin_nested():
                        self._start_item(session, batch, item)
                except AwesommeError as error:  # this item cannot start (its author gone, its input gone)
                    self._fail(item, str(error))

    def _start_item(self, session: Any, batch: Batch, item: BatchItem) -> None:
        item.attempts += 1
        item.updated_at = _now()
        if batch.cohort_id not in cohorts_of_series(session, item.study_uid, item.item_key):
            self._fail(item, f"series {item.item_key} is no longer in cohort {batch.cohort_id}")
            return
        self._still_allowed(session, batch)
        if self._already_stored(session, batch, item):  # a run before a crash stored it: record it, store nothing
            return
        if batch.kind == "classification":
            self._classify(session, batch, item)
            return
        item.status = "running"
        spec = batch.spec
        cluster = self._ensure_cluster()
        if batch.kind == "segmentation":
            future = cluster.client.submit(
                batch_tasks.segmentation_item,
                spec["model"],
                item.item_key,
                batches.output_uid(batch.id, item.item_key, "series"),
                batches.output_uid(batch.id, item.item_key, "instance"),
                batch.description,
                batch.tag,
                key=f"batch-{batch.id}-item-{item.id}-try-{item.attempts}",
                pure=False,
            )
        else:
            future = cluster.client.submit(
                batch_tasks.radiomics_item,
                _principal(session, batch),
                item.item_key,
                str(item.inputs["seg_uid"]),
                int(spec.get("segment_number", 1)),
                str(spec["preset"]),
                batch.tag,
                key=f"batch-{batch.id}-item-{item.id}-try-{item.attempts}",
                pure=False,
            )
        self._futures[future] = _InFlight(item.id, batch.id, time.perf_counter())

    @staticmethod
    def _still_allowed(session: Any, batch: Batch) -> None:
        """The author still administers the cohort, and the model is still bound to it (each item checks)."""
        if not _principal(session, batch).administers(batch.cohort_id):
            raise AwesommeError(f"{batch.created_by} no longer administers cohort {batch.cohort_id}")
        if batch.kind == "segmentation":
            loaded = get_registry().models.get(str(batch.spec["model"]))
            if loaded is None or batch.cohort_id not in bound_cohorts(session, loaded.config):
                raise AwesommeError(f"model {batch.spec['model']} is not bound to cohort {batch.cohort_id} any more")

    def _already_stored(self, session: Any, batch: Batch, item: BatchItem) -> bool:
        if batch.kind == "segmentation":
            seg_uid = batches.output_uid(batch.id, item.item_key, "series")
            if session.get(Segmentation, seg_uid) is not None:
                self._done(item, seg_uid)
                return True
        return False

    # -- results ------------------------------------------------------------------------------------------------
    def _collect(self) -> None:
        finished = [future for future in self._futures if future.done()]
        for future in finished:
            flight = self._futures.pop(future)
            try:
                answer = future.result()
            except Exception as error:  # a worker died more than Dask retries, a task that could not run
                answer = {"error": f"the worker failed: {type(error).__name__}: {str(error)[:500]}"}
            try:
                self._record(flight, answer)
            except Exception as error:
                logger.exception("Batch item %d could not be stored", flight.item_id)
                with session_scope() as session:
                    item = session.get(BatchItem, flight.item_id)
                    if item is not None:
                        self._fail(item, f"storing the result failed: {str(error)[:500]}")

    def _record(self, flight: _InFlight, answer: dict[str, Any]) -> None:
        duration = round(float(answer.get("s", time.perf_counter() - flight.started)), 3)
        with session_scope() as session:
            batch = session.get(Batch, flight.batch_id)
            item = session.get(BatchItem, flight.item_id)
            if batch is None or item is None:  # the cohort (and so the batch) was deleted meanwhile
                return
            item.duration_s = duration
            if "error" in answer:
                self._fail(item, str(answer["error"]))
                return
            if batch.kind != "segmentation":
                values = radiomics.FeatureValues(**answer["values"])
                with self._acting_as(batch):
                    feature_set = radiomics.store_feature_set(session, values, {"batch": batch.id})
                self._done(item, str(feature_set.id))  # in the same transaction: stored once, recorded once
                return
            session.expunge(batch)
            item_key = item.item_key
        # The SEG store writes Orthanc and its own transaction: outside ours (SQLite has one writer at a time).
        output = self._store_seg(batch, item_key, answer)
        with session_scope() as session:
            item = session.get(BatchItem, flight.item_id)
            if item is not None:
                self._done(item, output)

    def _store_seg(self, batch: Batch, item_key: str, answer: dict[str, Any]) -> str:
        if answer.get("seg") is None:
            return ""  # the model found nothing to segment: no SEG
        seg = pydicom.dcmread(io.BytesIO(answer["seg"]))
        seg_uid = str(seg.SeriesInstanceUID)
        if seg_uid != batches.output_uid(batch.id, item_key, "series"):
            raise AwesommeError(f"the worker's SEG {seg_uid} is not this item's")
        with session_scope() as session:
            stored = session.get(Segmentation, seg_uid) is not None
        if not stored:  # a run before a crash may have stored it: then only the item's state is left to write
            record = Segmentation(**answer["record"])
            with self._acting_as(batch):
                self._seg_store.store(
                    seg,
                    record,
                    SegmentationOperation.INFERENCE,
                    params={
                        "model": record.model_name,
                        "model_version": record.model_version,
                        "batch": batch.id,
                        "batch_tag": batch.tag,
                    },
                )
        return seg_uid

    def _classify(self, session: Any, batch: Batch, item: BatchItem) -> None:
        started = time.perf_counter()
        principal = _principal(session, batch)
        visibility = visibility_of(session, principal, {batch.cohort_id})
        feature_set_id = int(item.inputs["feature_set_id"])
        try:
            with self._acting_as(batch), session.begin_nested():
                if session.get(FeatureSet, feature_set_id) is None:
                    raise AwesommeError(f"feature set {feature_set_id} is gone")
                prediction: Prediction = predictions.predict_from_feature_set(
                    session, principal, visibility, str(batch.spec["model"]), feature_set_id
                )
        except AwesommeError as error:
            self._fail(item, str(error))
            return
        item.duration_s = round(time.perf_counter() - started, 3)
        self._done(item, str(prediction.id))

    @contextlib.contextmanager
    def _acting_as(self, batch: Batch) -> Iterator[None]:
        """What the batch stores is the batch's author's, journaled as theirs, from the batch runner."""
        marker = audit_context.set(AuditContext(actor=batch.created_by, source="batch", extra={"batch": batch.id}))
        try:
            yield
        finally:
            audit_context.reset(marker)

    @staticmethod
    def _done(item: BatchItem, output: str) -> None:
        item.status, item.output, item.error, item.updated_at = "done", output, "", _now()

    @staticmethod
    def _fail(item: BatchItem, error: str) -> None:
        item.status, item.error, item.updated_at = "failed", error[:4000], _now()

    def _finish_batches(self) -> None:
        """Running batches with nothing pending or running left are done."""
        with session_scope() as session:
            for batch in session.scalars(select(Batch).where(Batch.status == "running")):
                counts = batches.counts_of(session, batch.id)
                if counts["pending"] + counts["running"] == 0:
                    batch.status = "done"
                    batch.finished_at = _now()
                    logger.info("Batch %d done: %s", batch.id, counts)


def _principal(session: Any, batch: Batch) -> Principal:
    """The batch's author as they are now (a user since removed from the cohort runs nothing more of it)."""
    user = session.scalar(select(User).where(User.username == batch.created_by))
    if user is None or not user.is_active:
        raise AwesommeError(f"the batch's author {batch.created_by} is no longer an active user")
    return load_principal(session, user)


_runner: BatchRunner | None = None


def start_runner(settings: Settings | None = None) -> BatchRunner:
    """Start the server's one runner (from its entry point, never at import)."""
    global _runner
    if _runner is None:
        _runner = BatchRunner(settings)
        _runner.start()
    return _runner
