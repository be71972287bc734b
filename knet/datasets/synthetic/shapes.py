# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Vectorised rasterisation of the thing shapes (one shape per thing class).

A shape is given by a centre, a radius (half its extent), a rotation and an
aspect ratio, and is evaluated on pixel-centre coordinate grids, so the same
code renders still images and objects moving frame by frame.
"""
from __future__ import annotations

import numpy as np


def local_coords(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float,
                 angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates (u, v) of pixel centres in the object's rotated frame."""
    dy, dx = yy - np.float32(cy), xx - np.float32(cx)
    c, s = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    return c * dx + s * dy, -s * dx + c * dy


def fill_polygon(u: np.ndarray, v: np.ndarray,
                 vertices: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test; the Python loop is over edges only."""
    inside = np.zeros(u.shape, bool)
    n = len(vertices)
    for i in range(n):
        x1, y1 = vertices[i]
        x2, y2 = vertices[(i + 1) % n]
        crosses = (y1 > v) != (y2 > v)
        x_int = (x2 - x1) * (v - y1) / (y2 - y1 if y2 != y1 else 1e-9) + x1
        inside ^= crosses & (u < x_int)
    return inside


def _regular(n: int, radius: float, inner: float | None = None) -> np.ndarray:
    """Vertices of a regular n-gon (n-point star if ``inner``), tip up."""
    if inner is None:
        ang = -np.pi / 2 + 2 * np.pi * np.arange(n) / n
        r = np.full(n, radius)
    else:
        ang = -np.pi / 2 + np.pi * np.arange(2 * n) / n
        r = np.where(np.arange(2 * n) % 2 == 0, radius, radius * inner)
    return np.stack([r * np.cos(ang), r * np.sin(ang)],
                    axis=1).astype(np.float32)


def shape_mask(kind: str,
               yy: np.ndarray,
               xx: np.ndarray,
               cy: float,
               cx: float,
               radius: float,
               angle: float = 0.0,
               aspect: float = 1.0) -> np.ndarray:
    """Bool mask of the shape of thing class ``kind`` on grids yy / xx."""
    u, v = local_coords(yy, xx, cy, cx, angle)
    v = v / np.float32(aspect)
    r = np.float32(radius)
    if kind == 'disk':
        return u * u + v * v <= r * r
    if kind == 'ring':
        d2 = u * u + v * v
        return (d2 <= r * r) & (d2 >= (0.5 * r)**2)
    if kind == 'square':
        half = 0.8 * r
        return (np.abs(u) <= half) & (np.abs(v) <= half)
    if kind == 'cross':
        arm, thick = 0.95 * r, 0.33 * r
        return (((np.abs(u) <= arm) & (np.abs(v) <= thick))
                | ((np.abs(u) <= thick) & (np.abs(v) <= arm)))
    if kind == 'triangle':
        # shift down by R/4 so that the box is centred on (cy, cx)
        return fill_polygon(u, v - np.float32(0.2875 * r),
                            _regular(3, 1.15 * r))
    if kind == 'star':
        return fill_polygon(u, v, _regular(5, 1.05 * r, inner=0.45))
    raise KeyError(f'unknown thing shape {kind!r}')


def nominal_area(kind: str, radius: float, aspect: float = 1.0) -> float:
    """Analytic area of an unclipped shape (to detect heavy clipping)."""
    r2 = radius * radius * aspect
    return {
        'disk': np.pi * r2,
        'ring': np.pi * r2 * (1 - 0.5**2),
        'square': (1.6**2) * r2,
        'cross': (4 * 0.95 * 0.33 - 4 * 0.33**2 + 4 * 0.33 * 0.95) * r2,
        'triangle': 3 * np.sqrt(3) / 4 * (1.15**2) * r2,
        'star': 5 * 1.05 * 1.05 * 0.45 * np.sin(np.pi / 5) * r2,
    }[kind]
