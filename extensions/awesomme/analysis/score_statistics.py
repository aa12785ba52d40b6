"""Descriptive statistics of experts' scores of one type: counts per category, or the spread of numbers.

Agreement between raters (kappas, alpha) lives in ``agreement``; this is what one item's scores look like.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from typing import Any

from awesomme.models import ScoreKind

__all__ = ["distribution"]


def distribution(kind: str, labels: dict[str, str] | None, values: Iterable[Any]) -> dict[str, Any]:
    """Counts per category (all of them), or the numbers' spread; text has none."""
    values = list(values)
    if kind in (ScoreKind.ORDINAL, ScoreKind.NOMINAL):
        counts = Counter(str(value) for value in values)
        return {key: counts.get(key, 0) for key in labels or {}}
    if kind == ScoreKind.NUMERIC and values:
        numbers = [float(value) for value in values]
        return {
            "mean": statistics.fmean(numbers),
            "median": statistics.median(numbers),
            "sd": statistics.stdev(numbers) if len(numbers) > 1 else None,
            "min": min(numbers),
            "max": max(numbers),
        }
    return {}
