"""The instance headers of recently read series, kept in memory: what a SEG references, without a second read."""

from __future__ import annotations

import threading
from collections import OrderedDict

from pydicom import Dataset
from pydicom.tag import Tag

from awesomme.orthanc.client import SeriesState

__all__ = ["SERIES_KEPT", "SeriesHeaders", "without_pixels"]

SERIES_KEPT = 8  # a decode and the SEG of it are one request apart; a header is a few kB, a series a few MB
PIXEL_DATA = Tag("PixelData")


def without_pixels(dataset: Dataset) -> Dataset:
    """The dataset's elements but its pixel data (shared, not copied), and none of its decoded pixels."""
    return Dataset({tag: element for tag, element in dataset.items() if tag != PIXEL_DATA})


class SeriesHeaders:
    """The ordered headers of the last ``capacity`` series, per version: a changed series is read afresh."""

    def __init__(self, capacity: int = SERIES_KEPT) -> None:
        self._capacity = capacity
        self._kept: OrderedDict[tuple[str, str], list[Dataset]] = OrderedDict()
        self._lock = threading.Lock()  # requests run on several threads

    def get(self, state: SeriesState) -> list[Dataset] | None:
        with self._lock:
            headers = self._kept.get((state.series_uid, state.version))
            if headers is None:
                return None
            self._kept.move_to_end((state.series_uid, state.version))
            return list(headers)

    def keep(self, state: SeriesState, headers: list[Dataset]) -> None:
        with self._lock:
            self._kept[(state.series_uid, state.version)] = list(headers)
            self._kept.move_to_end((state.series_uid, state.version))
            while len(self._kept) > self._capacity:
                self._kept.popitem(last=False)
