# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Vectorised procedural textures: value noise and one texture per stuff class.

Each stuff class has its own colour *and* texture statistics (gradient and
clouds, bricks, speckle, vertical streaks, waves), so that a small CNN tells
them apart quickly. Functions return float32 RGB in about [0, 255] (unclipped).
"""
from __future__ import annotations

import numpy as np

from .classes import class_colour


def _axis(n: int, cells: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower / upper grid index and smoothstep weight for each of n pixels."""
    pos = (np.arange(n, dtype=np.float32) + 0.5) * (cells - 1) / n
    lo = np.minimum(pos.astype(np.int64), max(cells - 2, 0))
    hi = np.minimum(lo + 1, cells - 1)
    t = (pos - lo).astype(np.float32)
    # smoothstep weights hide the grid structure of plain bilinear noise
    return lo, hi, t * t * (3 - 2 * t)


def upsample_bilinear(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an (h, w[, c]) grid to (height, width[, c]), numpy only."""
    y0, y1, wy = _axis(height, grid.shape[0])
    x0, x1, wx = _axis(width, grid.shape[1])
    extra = (1, ) * (grid.ndim - 2)
    wy = wy.reshape((-1, 1) + extra)
    wx = wx.reshape((1, -1) + extra)
    top = grid[y0][:, x0] * (1 - wx) + grid[y0][:, x1] * wx
    bottom = grid[y1][:, x0] * (1 - wx) + grid[y1][:, x1] * wx
    return (top * (1 - wy) + bottom * wy).astype(np.float32)


def value_noise(rng: np.random.Generator,
                height: int,
                width: int,
                cell_y: float,
                cell_x: float | None = None) -> np.ndarray:
    """Smooth unit-scale noise with features about ``cell`` pixels large."""
    cell_x = cell_y if cell_x is None else cell_x
    gh = max(2, int(np.ceil(height / max(cell_y, 1e-3))) + 1)
    gw = max(2, int(np.ceil(width / max(cell_x, 1e-3))) + 1)
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    return upsample_bilinear(grid, height, width)


def _base(name: str, rng: np.random.Generator, jitter: float) -> np.ndarray:
    """Per-image colour of a class: its palette colour plus a small jitter."""
    colour = np.asarray(class_colour(name), np.float32)
    return colour + rng.normal(0, jitter, 3).astype(np.float32)


def _sky(rng, h, w, amp, scale):
    """Light blue, darker towards the top, with soft white clouds."""
    base = _base('sky', rng, 6)
    t = (np.arange(h, dtype=np.float32) / max(h - 1, 1))[:, None, None]
    tint = np.array([1.0, 0.6, 0.2], np.float32)
    img = base - (t - 0.5) * np.float32(40) * tint
    noise = value_noise(rng, h, w, 24 * scale, 40 * scale)
    clouds = np.clip(noise * 0.6, 0, 1)[..., None] * 0.6 * amp
    return img * (1 - clouds) + np.float32(245) * clouds


def _wall(rng, h, w, amp, scale):
    """Grey bricks with per-brick tint and dark mortar lines."""
    base = _base('wall', rng, 6)
    bh = float(rng.uniform(7, 10)) * scale
    bw = 2.2 * bh
    yy = np.arange(h, dtype=np.float32)[:, None] + float(rng.uniform(0, bh))
    xx = np.arange(w, dtype=np.float32)[None, :]
    row = np.floor(yy / bh)
    xs = xx + (row % 2) * (bw / 2) + float(rng.uniform(0, bw))
    col = np.floor(xs / bw)
    tint_table = rng.normal(0, 12 * amp, 97).astype(np.float32)
    brick = tint_table[((row * 31 + col) % 97).astype(np.int64)]
    mortar = ((yy % bh) < 1.6 * scale) | ((xs % bw) < 1.6 * scale)
    img = base + brick[..., None] * np.array([1.0, 0.9, 0.8], np.float32)
    img = np.where(mortar[..., None], base * 0.5, img)
    return img + rng.normal(0, 3 * amp, (h, w, 1)).astype(np.float32)


def _ground(rng, h, w, amp, scale):
    """Brown soil: blotches plus strong per-pixel speckle."""
    base = _base('ground', rng, 8)
    blotch = value_noise(rng, h, w, 10 * scale)[..., None] * 14 * amp
    speckle = rng.normal(0, 16 * amp, (h, w, 1)).astype(np.float32)
    return base + blotch + speckle * np.array([1.0, 0.85, 0.6], np.float32)


def _grass(rng, h, w, amp, scale):
    """Green with thin vertical streaks (noise stretched along y)."""
    base = _base('grass', rng, 8)
    streaks = value_noise(rng, h, w, 14 * scale, 1.5 * scale)[..., None]
    img = base + streaks * 28 * amp * np.array([0.6, 1.0, 0.4], np.float32)
    return img + rng.normal(0, 4 * amp, (h, w, 1)).astype(np.float32)


def _water(rng, h, w, amp, scale):
    """Dark blue with wavy horizontal stripes and sparkles."""
    base = _base('water', rng, 6)
    lam = float(rng.uniform(6, 9)) * scale
    yy = np.arange(h, dtype=np.float32)[:, None]
    xx = np.arange(w, dtype=np.float32)[None, :]
    bend = np.sin(2 * np.pi * xx / (4 * lam) + float(rng.uniform(0, 6.3)))
    wave = np.sin(2 * np.pi * yy / lam + 1.2 * bend)[..., None]
    img = base + wave * 22 * amp * np.array([0.5, 0.8, 1.0], np.float32)
    return img + (wave > 0.97).astype(np.float32) * 40 * amp


_STUFF_TEXTURES = {
    'sky': _sky,
    'wall': _wall,
    'ground': _ground,
    'grass': _grass,
    'water': _water
}


def stuff_texture(name: str,
                  rng: np.random.Generator,
                  height: int,
                  width: int,
                  amp: float = 1.0,
                  scale: float = 1.0) -> np.ndarray:
    """(H, W, 3) float32 texture of a stuff class; ``amp`` scales contrast."""
    tex = _STUFF_TEXTURES[name](rng, height, width, np.float32(amp), scale)
    return tex.astype(np.float32)


def clutter_texture(rng: np.random.Generator,
                    height: int,
                    width: int,
                    scale: float = 1.0) -> np.ndarray:
    """Texture of unlabelled (VOID) clutter: random colour, blotchy noise."""
    base = rng.uniform(40, 215, 3).astype(np.float32)
    blotch = value_noise(rng, height, width, 4 * scale)[..., None] * 35
    noise = rng.normal(0, 10, (height, width, 3)).astype(np.float32)
    return base + blotch + noise
