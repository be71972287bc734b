# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Scene rendering: textured stuff + occluding things, for images and videos.

A ``Scene`` is format-agnostic (RGB image + segment-index map + segment list);
the writers in ``formats/`` turn it into COCO / ADE / STEP / YouTube-VIS / VSPW
files. Everything is drawn from one ``numpy.random.Generator`` so a seed fixes
every pixel. ``difficulty`` (0 = learnable default, 1 = hard) interpolates the
knobs in ``SceneConfig``.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from .classes import (SYNTHETIC_STUFF_CLASSES, SYNTHETIC_THING_CLASSES,
                      check_classes, class_colour)
from .shapes import local_coords, nominal_area, shape_mask
from .textures import clutter_texture, stuff_texture, value_noise


def _lerp(a: float, b: float, t: float) -> float:
    """Interpolate a knob between its easy (a) and hard (b) value."""
    return a + (b - a) * t


@dataclass(frozen=True)
class SceneConfig:
    """What a scene may contain: size, classes, difficulty, crowd / void."""

    height: int = 128
    width: int = 128
    thing_classes: tuple[str, ...] = SYNTHETIC_THING_CLASSES
    stuff_classes: tuple[str, ...] = SYNTHETIC_STUFF_CLASSES
    difficulty: float = 0.0
    allow_crowd: bool = True
    allow_void: bool = True
    #: videos only: thing classes drawn per clip (0 = all); fewer classes
    #: mean more same-class instances, which category gating cannot tell
    #: apart (the association has to)
    classes_per_video: int = 0

    def __post_init__(self) -> None:
        check_classes(self.thing_classes, self.stuff_classes)
        if not 0.0 <= self.difficulty <= 1.0:
            raise ValueError(
                f'difficulty must be in [0, 1], got {self.difficulty}')
        if min(self.height, self.width) < 32:
            raise ValueError('image size must be at least 32x32, got '
                             f'{self.height}x{self.width}')
        if not 0 <= self.classes_per_video <= len(self.thing_classes):
            raise ValueError(
                'classes_per_video must be in [0, number of thing classes '
                f'({len(self.thing_classes)})], got {self.classes_per_video}')

    # ---- difficulty knobs (easy value at 0, hard value at 1) ----
    @property
    def scale(self) -> float:
        """Pixel scale relative to the 128-px design size (periods, speeds)."""
        return min(self.height, self.width) / 128.0

    @property
    def num_things(self) -> tuple[int, int]:
        """Inclusive range of (non-crowd) things per image."""
        d = self.difficulty
        return round(_lerp(2, 3, d)), round(_lerp(6, 10, d))

    @property
    def extent_range(self) -> tuple[float, float]:
        """Range of a thing's extent (diameter), px; >= 12 px by default."""
        side, d = min(self.height, self.width), self.difficulty
        lo = max(_lerp(12, 8, d), _lerp(0.14, 0.07, d) * side)
        hi = max(lo + 2, _lerp(0.34, 0.40, d) * side)
        return lo, hi

    @property
    def colour_jitter(self) -> float:
        """Std of the per-instance colour offset around the class colour."""
        return _lerp(14, 45, self.difficulty)

    @property
    def random_colour_prob(self) -> float:
        """Probability that a thing ignores its class colour entirely."""
        return _lerp(0.0, 0.5, self.difficulty)

    @property
    def max_occlusion(self) -> float:
        """Largest fraction of a thing that later things may cover."""
        return _lerp(0.3, 0.7, self.difficulty)

    @property
    def max_rotation(self) -> float:
        """Largest |rotation| of a thing, radians."""
        return math.radians(_lerp(25, 180, self.difficulty))

    @property
    def pattern_amp(self) -> float:
        """Contrast of the pattern printed on things."""
        return _lerp(14, 40, self.difficulty)

    @property
    def texture_amp(self) -> float:
        """Contrast multiplier of the stuff textures."""
        return _lerp(1.0, 1.6, self.difficulty)

    @property
    def crowd_prob(self) -> float:
        """Probability that an image / video contains one crowd group."""
        return _lerp(0.15, 0.3, self.difficulty) if self.allow_crowd else 0.0

    @property
    def void_prob(self) -> float:
        """Probability of an unlabelled (VOID) clutter blob."""
        return _lerp(0.35, 0.6, self.difficulty) if self.allow_void else 0.0

    @property
    def noise_std(self) -> float:
        """Per-pixel sensor noise std."""
        return _lerp(2.0, 8.0, self.difficulty)


@dataclass
class Segment:
    """One panoptic segment: class, thing or stuff, crowd, track id (0 =
    stuff)."""

    name: str
    isthing: bool
    iscrowd: bool = False
    track_id: int = 0


@dataclass
class Scene:
    """A rendered frame: RGB uint8 image and int32 segment map.

    ``segment_map`` is 0 on VOID pixels and ``k`` on ``segments[k - 1]``.
    """

    image: np.ndarray
    segment_map: np.ndarray
    segments: list[Segment] = field(default_factory=list)

    def iter_masks(self) -> Iterator[tuple[Segment, np.ndarray]]:
        """Yield (segment, bool mask) of each non-empty segment, in order."""
        counts = np.bincount(
            self.segment_map.ravel(), minlength=len(self.segments) + 1)
        for k, seg in enumerate(self.segments, start=1):
            if counts[k] > 0:
                yield seg, self.segment_map == k

    def semantic_map(self, classes: tuple[str, ...], offset: int,
                     void: int) -> np.ndarray:
        """uint8 map of ``classes.index(name) + offset``; ``void`` on VOID."""
        lut = np.full(len(self.segments) + 1, void, np.int64)
        for k, seg in enumerate(self.segments, start=1):
            lut[k] = classes.index(seg.name) + offset
        return lut[self.segment_map].astype(np.uint8)


@dataclass
class _Thing:
    """Appearance and size of a thing (fixed over a video; pose per frame)."""

    name: str
    radius: float
    angle: float
    aspect: float
    colour: np.ndarray
    pattern: str
    period: float
    pattern_phase: float
    shade: np.ndarray


def _grids(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinate grids (float32)."""
    yy, xx = np.meshgrid(
        np.arange(height, dtype=np.float32) + 0.5,
        np.arange(width, dtype=np.float32) + 0.5,
        indexing='ij')
    return yy, xx


def _blob(rng: np.random.Generator,
          yy: np.ndarray,
          xx: np.ndarray,
          frac_lo: float,
          frac_hi: float,
          roughness: float = 0.3) -> np.ndarray:
    """Irregular blob mask: an ellipse with a noisy boundary."""
    h, w = yy.shape
    cy, cx = rng.uniform(0.15, 0.85) * h, rng.uniform(0.15, 0.85) * w
    a = rng.uniform(frac_lo, frac_hi) * w
    b = rng.uniform(frac_lo, frac_hi) * h
    noise = value_noise(rng, h, w, min(h, w) / 5)
    return ((xx - cx) / a)**2 + ((yy - cy) / b)**2 + roughness * noise < 1.0


def _stuff_layer(rng: np.random.Generator, cfg: SceneConfig, height: int,
                 width: int) -> tuple[np.ndarray, np.ndarray]:
    """Background: wavy stuff bands, a stuff blob, maybe VOID clutter.

    Returns a float32 RGB image and an int map of stuff indices (-1 = VOID).
    """
    stuff = cfg.stuff_classes
    yy, xx = _grids(height, width)
    n_bands = 1
    if len(stuff) > 1:
        n_bands = int(rng.integers(2, min(3, len(stuff)) + 1))
    order = rng.permutation(len(stuff))
    bands = order[:n_bands]
    label = np.zeros((height, width), np.int64)
    cuts = np.sort(rng.uniform(0.2, 0.8, n_bands - 1)) * height
    for cut in cuts:
        amp = rng.uniform(2, 6) * cfg.scale
        lam = rng.uniform(30, 80) * cfg.scale
        phase = rng.uniform(0, 2 * np.pi)
        boundary = cut + amp * np.sin(2 * np.pi * xx[:1] / lam + phase)
        label += (yy > boundary).astype(np.int64)
    label = bands[label]
    unused = order[n_bands:]
    if len(unused) or rng.random() < 0.5:
        blob_cls = unused[0] if len(unused) else bands[rng.integers(n_bands)]
        label = np.where(_blob(rng, yy, xx, 0.15, 0.35), blob_cls, label)
    image = np.zeros((height, width, 3), np.float32)
    for idx in np.unique(label):
        tex = stuff_texture(stuff[idx], rng, height, width, cfg.texture_amp,
                            cfg.scale)
        sel = label == idx
        image[sel] = tex[sel]
    if rng.random() < cfg.void_prob:
        # ragged, so that it does not look like any thing shape
        void = _blob(rng, yy, xx, 0.08, 0.18, roughness=0.9)
        image[void] = clutter_texture(rng, height, width, cfg.scale)[void]
        label = np.where(void, -1, label)
    return image, label


def _sample_thing(rng: np.random.Generator, cfg: SceneConfig, name: str,
                  extent: tuple[float, float]) -> _Thing:
    """Draw a thing: class-biased colour, pattern, size, rotation, aspect."""
    if rng.random() < cfg.random_colour_prob:
        colour = rng.uniform(30, 230, 3)
    else:
        colour = np.asarray(class_colour(name), np.float64)
        colour = colour + rng.normal(0, cfg.colour_jitter, 3)
    lo, hi = extent
    radius = 0.5 * math.exp(rng.uniform(math.log(lo), math.log(hi)))
    aspect = 1.0
    if name in ('disk', 'ring'):
        aspect = rng.uniform(_lerp(0.8, 0.6, cfg.difficulty), 1.0)
    return _Thing(
        name=name,
        radius=radius,
        angle=rng.uniform(-cfg.max_rotation, cfg.max_rotation),
        aspect=aspect,
        colour=colour.astype(np.float32),
        pattern=('plain', 'stripes', 'dots')[int(rng.integers(3))],
        period=rng.uniform(4, 8) * cfg.scale,
        pattern_phase=rng.uniform(0, 2 * np.pi),
        shade=rng.normal(0, 1, 2).astype(np.float32))


def _thing_mask(thing: _Thing, yy: np.ndarray, xx: np.ndarray, cy: float,
                cx: float, angle: float, radius: float) -> np.ndarray:
    """Mask of a thing at a pose."""
    return shape_mask(thing.name, yy, xx, cy, cx, radius, angle, thing.aspect)


def _paint(image: np.ndarray, mask: np.ndarray, thing: _Thing, yy: np.ndarray,
           xx: np.ndarray, cy: float, cx: float, angle: float, radius: float,
           amp: float) -> None:
    """Paint colour, shading and an object-attached pattern where ``mask``."""
    u, v = local_coords(yy[mask], xx[mask], cy, cx, angle)
    un, vn = u / np.float32(radius), v / np.float32(radius)
    value = (thing.shade[0] * un + thing.shade[1] * vn) * np.float32(0.5 * amp)
    freq = np.float32(2 * np.pi / thing.period)
    if thing.pattern == 'stripes':
        value += np.float32(amp) * np.sin(freq * u + thing.pattern_phase)
    elif thing.pattern == 'dots':
        value += np.float32(amp) * np.cos(freq * u) * np.cos(freq * v)
    image[mask] = thing.colour[None, :] + value[:, None]


def _finish(image: np.ndarray, rng: np.random.Generator,
            noise_std: float) -> np.ndarray:
    """Add sensor noise, clip and quantise to uint8."""
    image = image + rng.normal(0, noise_std, image.shape).astype(np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _occlusion_ok(owner: np.ndarray, mask: np.ndarray, visible: dict[int, int],
                  full: dict[int, float], max_occlusion: float) -> bool:
    """Does painting ``mask`` on top keep every placed thing visible enough?"""
    covered = np.bincount(owner[mask], minlength=owner.max() + 1)
    for sid, vis in visible.items():
        left = vis - (covered[sid] if sid < len(covered) else 0)
        if left < (1.0 - max_occlusion) * full[sid]:
            return False
    return True


def _place(rng: np.random.Generator,
           cfg: SceneConfig,
           thing: _Thing,
           yy: np.ndarray,
           xx: np.ndarray,
           owner: np.ndarray,
           visible: dict[int, int],
           full: dict[int, float],
           min_pixels: float,
           tries: int = 25) -> tuple[float, float, np.ndarray] | None:
    """Centre where the thing is mostly inside and occludes only moderately."""
    h, w = yy.shape
    margin = 0.6 * thing.radius
    nominal = nominal_area(thing.name, thing.radius, thing.aspect)
    for _ in range(tries):
        cy = rng.uniform(margin, max(margin + 1, h - margin))
        cx = rng.uniform(margin, max(margin + 1, w - margin))
        mask = _thing_mask(thing, yy, xx, cy, cx, thing.angle, thing.radius)
        area = int(mask.sum())
        if area < min_pixels or area < 0.7 * nominal:
            continue
        if _occlusion_ok(owner, mask, visible, full, cfg.max_occlusion):
            return cy, cx, mask
    return None


def _commit(owner: np.ndarray, visible: dict[int, int], full: dict[int, float],
            mask: np.ndarray, sid: int) -> None:
    """Record a thing placed on top: shrink what it covers, then protect it."""
    covered = np.bincount(owner[mask], minlength=owner.max() + 1)
    for other in visible:
        if other < len(covered):
            visible[other] -= int(covered[other])
    owner[mask] = sid
    visible[sid] = int(mask.sum())
    full[sid] = float(mask.sum())


def _min_pixels(cfg: SceneConfig) -> float:
    """Smallest visible area (px) a placed thing must have."""
    return 0.35 * cfg.extent_range[0]**2


def _add_stuff_segments(label: np.ndarray, cfg: SceneConfig,
                        segment_map: np.ndarray,
                        segments: list[Segment]) -> None:
    """One segment per stuff class in ``label`` (panoptic convention)."""
    for idx in np.unique(label):
        if idx < 0:
            continue
        segments.append(Segment(cfg.stuff_classes[idx], isthing=False))
        segment_map[label == idx] = len(segments)


def _crowd_members(rng: np.random.Generator, cfg: SceneConfig,
                   name: str) -> list[tuple[_Thing, float, float]]:
    """A crowd group: 3-5 small things of one class and their offsets."""
    lo = cfg.extent_range[0]
    small = (0.55 * lo, 0.8 * lo)
    members = []
    for _ in range(int(rng.integers(3, 6))):
        thing = _sample_thing(rng, cfg, name, small)
        dy, dx = rng.uniform(-1.2, 1.2, 2) * lo
        members.append((thing, float(dy), float(dx)))
    return members


def render_image(rng: np.random.Generator, cfg: SceneConfig) -> Scene:
    """Render an image: stuff background, maybe a crowd, 2-6 things."""
    h, w = cfg.height, cfg.width
    yy, xx = _grids(h, w)
    image, label = _stuff_layer(rng, cfg, h, w)
    segment_map = np.zeros((h, w), np.int32)
    segments: list[Segment] = []
    _add_stuff_segments(label, cfg, segment_map, segments)
    # segment id of the thing on top of each pixel, 0 = none
    owner = np.zeros((h, w), np.int64)
    things = cfg.thing_classes
    track = 0

    if rng.random() < cfg.crowd_prob:
        name = things[int(rng.integers(len(things)))]
        lo = cfg.extent_range[0]
        cy = rng.uniform(1.5 * lo, h - 1.5 * lo)
        cx = rng.uniform(1.5 * lo, w - 1.5 * lo)
        union = np.zeros((h, w), bool)
        for thing, dy, dx in _crowd_members(rng, cfg, name):
            mask = _thing_mask(thing, yy, xx, cy + dy, cx + dx, thing.angle,
                               thing.radius)
            _paint(image, mask, thing, yy, xx, cy + dy, cx + dx, thing.angle,
                   thing.radius, cfg.pattern_amp)
            union |= mask
        if union.any():
            track += 1
            segments.append(Segment(name, True, iscrowd=True, track_id=track))
            segment_map[union] = len(segments)
            owner[union] = len(segments)

    visible: dict[int, int] = {}
    full: dict[int, float] = {}
    lo_n, hi_n = cfg.num_things
    for _ in range(int(rng.integers(lo_n, hi_n + 1))):
        name = things[int(rng.integers(len(things)))]
        thing = _sample_thing(rng, cfg, name, cfg.extent_range)
        placed = _place(rng, cfg, thing, yy, xx, owner, visible, full,
                        _min_pixels(cfg))
        if placed is None:
            continue
        cy, cx, mask = placed
        _paint(image, mask, thing, yy, xx, cy, cx, thing.angle, thing.radius,
               cfg.pattern_amp)
        track += 1
        segments.append(Segment(thing.name, isthing=True, track_id=track))
        segment_map[mask] = len(segments)
        _commit(owner, visible, full, mask, len(segments))
    return Scene(_finish(image, rng, cfg.noise_std), segment_map, segments)


def _bounce(x: float, lo: float, hi: float) -> float:
    """Free motion reflected back into [lo, hi] (closed form)."""
    span = hi - lo
    if span <= 0:
        return 0.5 * (lo + hi)
    u = (x - lo) % (2 * span)
    return lo + (u if u <= span else 2 * span - u)


@dataclass
class _Track:
    """A moving thing (or crowd group) of a video."""

    # (appearance, dy, dx) per member; a single member for a plain thing
    things: list[tuple[_Thing, float, float]]
    name: str
    iscrowd: bool
    cy: float
    cx: float
    vy: float
    vx: float
    spin: float
    growth: float
    start: int
    end: int  # inclusive


def render_video(rng: np.random.Generator, cfg: SceneConfig,
                 num_frames: int) -> list[Scene]:
    """Render a clip: panning background, moving things, stable track ids.

    Track ``k`` keeps ``track_id = k + 1`` in every frame where it is present;
    some tracks enter late or leave early; the first non-crowd track spans the
    whole clip (an optional crowd group, if any, is track 1).
    """
    h, w = cfg.height, cfg.width
    if num_frames < 1:
        raise ValueError('num_frames must be >= 1')
    pan = rng.uniform(0.0, 1.5) * cfg.scale * (1 if rng.random() < 0.5 else -1)
    extra = int(math.ceil(abs(pan) * (num_frames - 1))) + 1
    bg_wide, label_wide = _stuff_layer(rng, cfg, h, w + extra)
    yy, xx = _grids(h, w)
    things = cfg.thing_classes
    if 0 < cfg.classes_per_video < len(things):
        # drawn only when asked, so default clips stay pixel-identical
        pick = rng.choice(len(things), cfg.classes_per_video, replace=False)
        things = tuple(things[i] for i in sorted(pick))
    tracks: list[_Track] = []

    def velocity() -> tuple[float, float]:
        speed = rng.uniform(0.8, 2.5) * cfg.scale
        theta = rng.uniform(0, 2 * np.pi)
        return speed * math.sin(theta), speed * math.cos(theta)

    if rng.random() < cfg.crowd_prob:
        name = things[int(rng.integers(len(things)))]
        lo = cfg.extent_range[0]
        vy, vx = velocity()
        members = _crowd_members(rng, cfg, name)
        cy = rng.uniform(1.5 * lo, h - 1.5 * lo)
        cx = rng.uniform(1.5 * lo, w - 1.5 * lo)
        tracks.append(
            _Track(members, name, True, cy, cx, vy, vx, 0.0, 0.0, 0,
                   num_frames - 1))

    # place first-frame positions with the same occlusion rule as images
    owner = np.zeros((h, w), np.int64)
    visible: dict[int, int] = {}
    full: dict[int, float] = {}
    lo_n, hi_n = cfg.num_things
    n_plain = 0
    for _ in range(int(rng.integers(lo_n, hi_n + 1))):
        name = things[int(rng.integers(len(things)))]
        thing = _sample_thing(rng, cfg, name, cfg.extent_range)
        placed = _place(rng, cfg, thing, yy, xx, owner, visible, full,
                        _min_pixels(cfg))
        if placed is None:
            continue
        cy, cx, mask = placed
        _commit(owner, visible, full, mask, len(visible) + 1)
        vy, vx = velocity()
        start, end = 0, num_frames - 1
        enter_exit = _lerp(0.3, 0.5, cfg.difficulty)
        if n_plain > 0 and num_frames >= 4 and rng.random() < enter_exit:
            if rng.random() < 0.5:
                start = int(rng.integers(1, num_frames // 2 + 1))
            else:
                end = int(rng.integers(num_frames // 2, num_frames - 1))
        spin, growth = rng.uniform(-0.08, 0.08), rng.uniform(-0.015, 0.015)
        tracks.append(
            _Track([(thing, 0.0, 0.0)], thing.name, False, cy, cx, vy, vx,
                   spin, growth, start, end))
        n_plain += 1

    frames = []
    for t in range(num_frames):
        x0 = int(round(pan * t)) + (0 if pan >= 0 else extra - 1)
        image = bg_wide[:, x0:x0 + w].copy()
        label = label_wide[:, x0:x0 + w]
        segment_map = np.zeros((h, w), np.int32)
        segments: list[Segment] = []
        _add_stuff_segments(label, cfg, segment_map, segments)
        for k, tr in enumerate(tracks):
            if not tr.start <= t <= tr.end:
                continue
            scale = max(0.5, 1.0 + tr.growth * t)
            union = np.zeros((h, w), bool)
            for thing, dy, dx in tr.things:
                radius = thing.radius * scale
                m = 0.6 * radius
                cy = _bounce(tr.cy + dy + tr.vy * t, m, h - m)
                cx = _bounce(tr.cx + dx + tr.vx * t, m, w - m)
                angle = thing.angle + tr.spin * t
                mask = _thing_mask(thing, yy, xx, cy, cx, angle, radius)
                _paint(image, mask, thing, yy, xx, cy, cx, angle, radius,
                       cfg.pattern_amp)
                union |= mask
            segments.append(Segment(tr.name, True, tr.iscrowd, k + 1))
            segment_map[union] = len(segments)
        image = _finish(image, rng, cfg.noise_std)
        frames.append(Scene(image, segment_map, segments))
    return frames
