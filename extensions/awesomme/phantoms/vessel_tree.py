"""Branching tubes (pulmonary vessels, airways) grown generation by generation.

Each generation is grown for all branches at once with numpy; a branch survives only
while its end stays inside a region (a callable on point arrays), so trees fill the
lungs without leaving them.  Segments are then rasterised box by box.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .geometry import Grid
from .shapes import segment_distance

RegionTest = Callable[[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]], NDArray[np.bool_]]


@dataclass(frozen=True)
class Segments:
    """Straight tube pieces: start ``a`` (n, 3), end ``b`` (n, 3) in LPS mm, radius (n,) mm."""

    a: NDArray[np.float64]
    b: NDArray[np.float64]
    radius: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.radius)

    @staticmethod
    def concat(parts: list[Segments]) -> Segments:
        if not parts:
            return Segments(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0))
        return Segments(
            np.concatenate([p.a for p in parts]),
            np.concatenate([p.b for p in parts]),
            np.concatenate([p.radius for p in parts]),
        )

    def scaled_radius(self, factor: float, add_mm: float = 0.0) -> Segments:
        return Segments(self.a, self.b, self.radius * factor + add_mm)


def _perpendicular(rng: np.random.Generator, d: NDArray[np.float64]) -> NDArray[np.float64]:
    """Random unit vectors perpendicular to the rows of ``d``."""
    v = rng.standard_normal(d.shape)
    v -= (v * d).sum(axis=1, keepdims=True) * d
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9)


def grow_tree(
    rng: np.random.Generator,
    roots: Segments,
    inside: RegionTest,
    *,
    min_radius: float,
    max_generations: int,
    radius_ratio: tuple[float, float] = (0.68, 0.84),
    length_per_radius: tuple[float, float] = (5.0, 9.0),
    branch_angle_deg: tuple[float, float] = (20.0, 45.0),
    spread: float = 0.3,
) -> Segments:
    """Grow binary trees from ``roots`` (kept as given) until branches get thinner than
    ``min_radius``.  ``spread`` bends children away from their root's start, which
    fans the tree out into the region instead of curling back."""
    parts = [roots]
    a, b, r = roots.a, roots.b, roots.radius
    origin = roots.a.copy()  # each branch remembers its root start
    for _ in range(max_generations):
        if len(r) == 0:
            break
        d = b - a
        d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
        n = len(r)
        parent_dir = np.concatenate([d, d])
        side = np.concatenate([np.ones(n), -np.ones(n)])[:, None]
        start = np.concatenate([b, b])
        root_start = np.concatenate([origin, origin])
        away = start - root_start
        away /= np.maximum(np.linalg.norm(away, axis=1, keepdims=True), 1e-9)
        kids_r = np.concatenate([r, r]) * rng.uniform(*radius_ratio, size=2 * n)
        length = kids_r * rng.uniform(*length_per_radius, size=2 * n) + 2.0
        end = np.zeros_like(start)
        placed = np.zeros(2 * n, dtype=bool)
        # Up to four tries per child: a fresh branching plane, then half length.
        for attempt in range(4):
            todo = np.flatnonzero(~placed)
            if todo.size == 0:
                break
            perp = _perpendicular(rng, parent_dir[todo])
            angle = np.radians(rng.uniform(*branch_angle_deg, size=todo.size))[:, None]
            direction = np.cos(angle) * parent_dir[todo] + side[todo] * np.sin(angle) * perp
            direction += spread * away[todo]
            direction /= np.linalg.norm(direction, axis=1, keepdims=True)
            scale = 1.0 if attempt < 2 else 0.5
            candidate = start[todo] + direction * (scale * length[todo])[:, None]
            ok = inside(candidate[:, 0], candidate[:, 1], candidate[:, 2])
            end[todo[ok]] = candidate[ok]
            placed[todo[ok]] = True
        keep = placed & (kids_r >= min_radius)
        a, b, r, origin = start[keep], end[keep], kids_r[keep], root_start[keep]
        parts.append(Segments(a, b, r))
    return Segments.concat(parts)


def rasterise_segments(
    labels: NDArray[np.uint8],
    grid: Grid,
    segments: Segments,
    remap: NDArray[np.uint8],
    truth: NDArray[np.uint8] | None = None,
) -> None:
    """Relabel voxels whose centre lies within a segment's radius: ``label = remap[label]``.

    ``remap`` is a 256-entry table, so one pass can say e.g. "lung becomes lung vessel,
    mediastinal fat becomes blood, everything else stays".  Work is confined to each
    segment's bounding box.
    """
    if len(segments) == 0:
        return
    x, y, z = (axis.astype(np.float32) for axis in (grid.x, grid.y, grid.z))
    lo = np.minimum(segments.a, segments.b) - segments.radius[:, None]
    hi = np.maximum(segments.a, segments.b) + segments.radius[:, None]
    # index boxes of all segments at once (searchsorted is vectorised)
    starts = [np.searchsorted(axis, lo[:, n], "left") for n, axis in enumerate((x, y, z))]
    stops = [np.searchsorted(axis, hi[:, n], "right") for n, axis in enumerate((x, y, z))]
    visible = np.flatnonzero((stops[0] > starts[0]) & (stops[1] > starts[1]) & (stops[2] > starts[2]))
    for s in visible:
        i0, j0, k0 = (int(v[s]) for v in starts)
        i1, j1, k1 = (int(v[s]) for v in stops)
        a, b, r = segments.a[s], segments.b[s], segments.radius[s]
        dist = segment_distance(x[None, None, i0:i1], y[None, j0:j1, None], z[k0:k1, None, None], a, b)
        hit = dist <= r
        if not hit.any():
            continue
        sub = labels[k0:k1, j0:j1, i0:i1]
        sub[hit] = remap[sub[hit]]
        if truth is not None:
            truth[k0:k1, j0:j1, i0:i1][hit] = 1
