# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Vectorised procedural textures: value noise, one distinctive texture per stuff class.

Each stuff class has its own colour *and* texture statistics (gradient + clouds,
bricks, speckle, vertical streaks, waves) so a small CNN separates them quickly.
All functions return float32 RGB arrays in [0, 255] (not yet clipped).
"""
from __future__ import annotations

import numpy as np

from .classes import class_colour


def upsample_bilinear(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinearly resize a small (h, w[, c]) grid to (height, width[, c]) with numpy only."""
    gh, gw = grid.shape[:2]
    ys = (np.arange(height, dtype=np.float32) + 0.5) * (gh - 1) / height
    xs = (np.arange(width, dtype=np.float32) + 0.5) * (gw - 1) / width
    y0 = np.minimum(ys.astype(np.int64), gh - 2) if gh > 1 else np.zeros(height, np.int64)
    x0 = np.minimum(xs.astype(np.int64), gw - 2) if gw > 1 else np.zeros(width, np.int64)
    y1 = np.minimum(y0 + 1, gh - 1)
    x1 = np.minimum(x0 + 1, gw - 1)
    wy = (ys - y0).astype(np.float32)
    wx = (xs - x0).astype(np.float32)
    # smoothstep weights hide the grid structure of plain bilinear noise
    wy = wy * wy * (3 - 2 * wy)
    wx = wx * wx * (3 - 2 * wx)
    extra = (1,) * (grid.ndim - 2)
    wy = wy.reshape((-1, 1) + extra)
    wx = wx.reshape((1, -1) + extra)
    top = grid[y0][:, x0] * (1 - wx) + grid[y0][:, x1] * wx
    bottom = grid[y1][:, x0] * (1 - wx) + grid[y1][:, x1] * wx
    return (top * (1 - wy) + bottom * wy).astype(np.float32)


def value_noise(rng: np.random.Generator, height: int, width: int,
                cell_y: float, cell_x: float | None = None) -> np.ndarray:
    """Smooth noise of unit-ish amplitude whose features are about ``cell`` pixels large."""
    cell_x = cell_y if cell_x is None else cell_x
    gh = max(2, int(np.ceil(height / max(cell_y, 1e-3))) + 1)
    gw = max(2, int(np.ceil(width / max(cell_x, 1e-3))) + 1)
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    return upsample_bilinear(grid, height, width)


def _base(name: str, rng: np.random.Generator, jitter: float) -> np.ndarray:
    """Per-image base colour of a class: its palette colour plus a small jitter."""
    return np.asarray(class_colour(name), np.float32) + rng.normal(0, jitter, 3).astype(np.float32)


def _sky(rng, h, w, amp, scale):
    base = _base('sky', rng, 6)
    t = (np.arange(h, dtype=np.float32) / max(h - 1, 1))[:, None, None]
    img = base + (t - 0.5) * np.float32(-40) * np.array([1.0, 0.6, 0.2], np.float32)
    clouds = np.clip(value_noise(rng, h, w, 24 * scale, 40 * scale) * 0.6, 0, 1)[..., None]
    img = img * (1 - clouds * 0.6 * amp) + np.float32(245) * clouds * 0.6 * amp
    return img


def _wall(rng, h, w, amp, scale):
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
    base = _base('ground', rng, 8)
    blotch = value_noise(rng, h, w, 10 * scale)[..., None] * 14 * amp
    speckle = rng.normal(0, 16 * amp, (h, w, 1)).astype(np.float32)
    return base + blotch + speckle * np.array([1.0, 0.85, 0.6], np.float32)


def _grass(rng, h, w, amp, scale):
    base = _base('grass', rng, 8)
    streaks = value_noise(rng, h, w, 14 * scale, 1.5 * scale)[..., None]
    img = base + streaks * 28 * amp * np.array([0.6, 1.0, 0.4], np.float32)
    return img + rng.normal(0, 4 * amp, (h, w, 1)).astype(np.float32)


def _water(rng, h, w, amp, scale):
    base = _base('water', rng, 6)
    lam = float(rng.uniform(6, 9)) * scale
    yy = np.arange(h, dtype=np.float32)[:, None]
    xx = np.arange(w, dtype=np.float32)[None, :]
    phase = 2 * np.pi * yy / lam + 1.2 * np.sin(2 * np.pi * xx / (4 * lam) + float(rng.uniform(0, 6.3)))
    wave = np.sin(phase)[..., None]
    img = base + wave * 22 * amp * np.array([0.5, 0.8, 1.0], np.float32)
    sparkle = (wave > 0.97).astype(np.float32) * 40 * amp
    return img + sparkle


_STUFF_TEXTURES = {'sky': _sky, 'wall': _wall, 'ground': _ground, 'grass': _grass, 'water': _water}


def stuff_texture(name: str, rng: np.random.Generator, height: int, width: int,
                  amp: float = 1.0, scale: float = 1.0) -> np.ndarray:
    """(height, width, 3) float32 texture of a stuff class; ``amp`` scales its contrast."""
    return _STUFF_TEXTURES[name](rng, height, width, np.float32(amp), scale).astype(np.float32)


def clutter_texture(rng: np.random.Generator, height: int, width: int, scale: float = 1.0) -> np.ndarray:
    """Texture of unlabelled (VOID) clutter: random colour, strong blotchy noise."""
    base = rng.uniform(40, 215, 3).astype(np.float32)
    blotch = value_noise(rng, height, width, 4 * scale)[..., None] * 35
    return base + blotch + rng.normal(0, 10, (height, width, 3)).astype(np.float32)
