"""QIDO /studies for a cohort member under 10 concurrent searches: all of Orthanc's studies filtered in Python (the
old way) against a query narrowed to the caller's studies (``api.dicomweb.filtered_search``), in the same run.

    .venv/bin/python benchmarks/qido_concurrency.py [--studies 300] [--visible 10] [--rounds 5]

Starts a private Orthanc (the platform's configuration) on a free loopback port with its own storage, stores
``--studies`` one-image studies, and gives the caller ``--visible`` of them. Prints the median latency of the 10
concurrent searches of each round, per method, and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from awesomme.api.dicomweb import filtered_search
from awesomme.core.config import Settings
from awesomme.core.visibility import Visibility
from awesomme.orthanc.multipart import encode_multipart
from awesomme.runtime.orthanc import ORTHANC_BINARY, orthanc_config

CONCURRENT = 10


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _image(number: int) -> bytes:
    dataset = pydicom.Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.file_meta.MediaStorageSOPClassUID = MRImageStorage
    dataset.SOPClassUID = MRImageStorage
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID = generate_uid(), generate_uid()
    dataset.PatientID, dataset.PatientName, dataset.Modality = f"BENCH-{number:05d}", f"BENCH^{number}", "MR"
    dataset.StudyDate, dataset.StudyDescription = "20260101", "qido benchmark"
    dataset.Rows = dataset.Columns = 8
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 16, 16, 15, 0
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
    dataset.PixelData = np.zeros((8, 8), np.uint16).tobytes()
    dataset.is_little_endian, dataset.is_implicit_VR = True, False
    buffer = io.BytesIO()
    dataset.save_as(buffer, write_like_original=False)
    return buffer.getvalue()


def _keep_old(item: dict[str, Any], visibility: Visibility) -> bool:
    return visibility.sees_study(str((item.get("0020000D", {}).get("Value") or [""])[0]))


async def _round(client: httpx.AsyncClient, visibility: Visibility, narrowed: bool) -> float:
    async def old() -> list[dict[str, Any]]:
        answer = (await client.get("/studies")).json()
        return [item for item in answer if _keep_old(item, visibility)]

    async def search(query: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        return list((await client.get("/studies", params=list(query))).json())

    async def one() -> float:
        started = time.perf_counter()
        found = await (filtered_search(search, [], "studies", visibility, (0, None)) if narrowed else old())
        assert len(found) == len(visibility.studies), len(found)
        return time.perf_counter() - started

    return statistics.median(await asyncio.gather(*(one() for _ in range(CONCURRENT))))


async def _measure(url: str, visibility: Visibility, rounds: int) -> dict[str, float]:
    medians: dict[str, list[float]] = {"python filter": [], "narrowed": []}
    async with httpx.AsyncClient(base_url=url + "/dicom-web", auth=("bench", "bench"), timeout=120) as client:
        for _ in range(rounds):  # alternate, so both see the same machine state
            medians["python filter"].append(await _round(client, visibility, narrowed=False))
            medians["narrowed"].append(await _round(client, visibility, narrowed=True))
    return {name: statistics.median(values) for name, values in medians.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--studies", type=int, default=300)
    parser.add_argument("--visible", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        port = _free_port()
        settings = Settings(var_dir=Path(scratch), orthanc_url=f"http://127.0.0.1:{port}")
        config = Path(scratch) / "orthanc.json"
        config.write_text(json.dumps(orthanc_config(settings, "bench", "bench", Path(scratch) / "storage")))
        orthanc = subprocess.Popen([ORTHANC_BINARY, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    if httpx.get(url + "/system", auth=("bench", "bench")).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            images = [_image(number) for number in range(arguments.studies)]
            for start in range(0, len(images), 50):
                body, content_type = encode_multipart(images[start : start + 50])
                reply = httpx.post(
                    url + "/dicom-web/studies",
                    content=body,
                    headers={"Content-Type": content_type, "Accept": "application/dicom+json"},
                    auth=("bench", "bench"),
                    timeout=120,
                )
                reply.raise_for_status()
            step = max(1, arguments.studies // arguments.visible)
            chosen = images[::step][: arguments.visible]
            visible = frozenset(str(pydicom.dcmread(io.BytesIO(image)).StudyInstanceUID) for image in chosen)
            result = asyncio.run(_measure(url, Visibility(studies=visible), arguments.rounds))
        finally:
            orthanc.terminate()
            orthanc.wait(timeout=30)
    old, new = result["python filter"], result["narrowed"]
    print(
        f"QIDO /studies, {CONCURRENT} concurrent searches, {arguments.studies} studies in Orthanc, "
        f"{arguments.visible} visible (median of {arguments.rounds} rounds)"
    )
    print(f"  all studies, filtered in Python : {old * 1000:8.1f} ms")
    print(f"  narrowed to the caller's studies: {new * 1000:8.1f} ms   (x{old / new:.1f} faster)")


if __name__ == "__main__":
    main()
