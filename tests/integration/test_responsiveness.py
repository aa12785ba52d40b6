"""The server keeps answering while models run: MONAI Label's endpoints work off the event loop."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from awesomme.orthanc.client import OrthancClient
from tests.integration.conftest import Account, client_for, store_patient

HEALTH_MAX_S = 0.1
QIDO_MAX_S = 0.5
# large enough that the shipped nodule model runs for seconds on 2 cores, so that many polls fall inside it
SERIES_SHAPE = (48, 512, 512)
INFERENCES = 2


def _poll(client: httpx.Client, path: str, params: dict[str, str] | None = None) -> tuple[float, float, int]:
    start = time.perf_counter()
    status = client.get(path, params=params).status_code
    return start, time.perf_counter(), status


def test_health_and_qido_answer_promptly_during_inferences(
    server_url: str, admin: Account, orthanc: OrthancClient, tmp_path: Path
) -> None:
    """Two inferences at once (any member may start them) leave health checks and DICOMweb searches answered:
    each health check within 100 ms and each search within 0.5 s, polled throughout the inferences."""
    patient = store_patient(orthanc, "chest-ct", 181, tmp_path, shape=SERIES_SHAPE).patient
    with client_for(server_url, admin) as viewer:
        _poll(viewer, "/api/health")  # a warm connection and server, as a viewer has
        _poll(viewer, "/dicom-web/studies", {"limit": "10"})
        spans: list[tuple[float, float, int]] = []

        def infer() -> None:
            with client_for(server_url, admin) as client:
                start = time.perf_counter()
                reply = client.post("/infer/lung_nodule_ct", params={"image": patient.series_uid, "output": "json"})
                spans.append((start, time.perf_counter(), reply.status_code))

        inferences = [threading.Thread(target=infer) for _ in range(INFERENCES)]
        for inference in inferences:
            inference.start()
        health: list[tuple[float, float, int]] = []
        searches: list[tuple[float, float, int]] = []
        while any(inference.is_alive() for inference in inferences):
            health.append(_poll(viewer, "/api/health"))
            searches.append(_poll(viewer, "/dicom-web/studies", {"limit": "10"}))
            time.sleep(0.05)
        for inference in inferences:
            inference.join()

    assert [status for *_, status in spans] == [200] * INFERENCES, spans
    running_from, running_to = min(start for start, *_ in spans), max(end for _, end, _ in spans)
    assert running_to - running_from > 2.0, "the inferences were too short to show anything"
    # only polls made wholly while an inference ran count
    during = [poll for poll in health if running_from < poll[0] and poll[1] < running_to]
    searched = [poll for poll in searches if running_from < poll[0] and poll[1] < running_to]
    assert len(during) >= 5 and len(searched) >= 5, (len(during), len(searched))
    assert all(status == 200 for *_, status in during + searched)
    for name, polls, bound in (("health check", during, HEALTH_MAX_S), ("DICOMweb search", searched, QIDO_MAX_S)):
        # every poll: on the loop, each waited for a whole inference (seconds); without the SEG codec's warm-up at
        # start, one waited 0.5 s for highdicom's first SEG near the first inference's end
        slowest = max(end - start for start, end, _ in polls)
        assert slowest < bound, f"a {name} took {slowest:.3f} s during inferences (bound {bound} s)"
