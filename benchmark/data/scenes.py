"""Procedural street scenes: the content of the five synthetic stand-in domains.

`render_scene(domain, rng, height, width)` returns an RGB image and its label map in the 19
Cityscapes train ids (255 = ignore: the ego car's bonnet / dashboard and tram rails, as in the
real datasets). Every domain draws the same street grammar -- a perspective road with lanes,
kerbs and sidewalks, buildings with windows, walls, fences, hedges, poles carrying traffic lights,
signs and lamps, trees, grass, sky, people, riders on bicycles and motorcycles, parked and moving
cars, trucks, buses and trams on rails, painted far to near so nearer things occlude farther
ones -- and `DOMAINS` (scene_styles.py) changes the camera, the content statistics and the look.

Output depends only on the generator's state. `python -m benchmark.data.scenes --preview out.png`
writes a grid of samples per domain; `--benchmark` times rendering.
"""
from __future__ import annotations

import argparse
import colorsys
import dataclasses
import sys
import time
from collections.abc import Callable

import cv2
import numpy as np

from benchmark.data.classes import IGNORE_INDEX
from benchmark.data.scene_draw import GROUND_DEPTH, Camera, Canvas, facade, ground_strip, quad, quads, sprite, z_samples
from benchmark.data.scene_effects import finish_image
from benchmark.data.scene_objects import (
    draw_bicycle, draw_bus, draw_car, draw_motorcycle, draw_person, draw_pole, draw_rider, draw_sign,
    draw_traffic_light, draw_train, draw_tree, draw_truck,
)
from benchmark.data.scene_styles import (
    BUILDING, FENCE, MATERIAL, ROAD, SIDEWALK, SKY, TERRAIN, VEGETATION, WALL, BICYCLE, BUS, CAR,
    MOTORCYCLE, PERSON, RIDER, TRUCK, TRAIN, DOMAINS, DomainStyle,
)
from benchmark.errors import guarded

__all__ = ["DOMAINS", "DomainStyle", "render_scene"]

MIN_SIZE = 16


def render_scene(domain: str, rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """One street scene of `domain` (a dataset id): (rgb uint8 (H, W, 3), train ids uint8 (H, W))."""
    if domain not in DOMAINS:
        raise ValueError(f"unknown synthetic domain {domain!r}; expected one of {sorted(DOMAINS)}")
    if int(height) < MIN_SIZE or int(width) < MIN_SIZE:
        raise ValueError(f"scene size {height}x{width} is too small (at least {MIN_SIZE}x{MIN_SIZE})")
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator (scenes never use the global random state)")
    street = _Street(DOMAINS[domain], rng, int(height), int(width))
    street.build()
    rgb = finish_image(street.cv, street.cam, street.style, rng, street.shadow, street.night, street.fog)
    return rgb, street.cv.label


@dataclasses.dataclass
class _Layout:
    lane_width: float
    lanes: int
    ego_lane: int
    two_way: bool
    left: float            # road edges (X, metres)
    right: float
    sidewalk: tuple[float, float]   # widths left, right
    verge: tuple[float, float]      # grass strip beyond each sidewalk
    sides: tuple[str, str]          # "buildings" | "park"
    cross: tuple[float, float] | None  # cross street (z0, width)
    street_end: float
    track_lane: int | None          # lane carrying tram rails


class _Street:
    """Builds one scene on a canvas: layout, then surfaces far to near, then objects by depth."""

    def __init__(self, style: DomainStyle, rng: np.random.Generator, height: int, width: int):
        self.style, self.rng, self.h, self.w = style, rng, height, width
        self.shadow = np.zeros((height, width), np.uint8)
        r = rng.uniform
        self.cam = Camera(f=r(*style.focal) * width, cx=width * (0.5 + r(-style.yaw, style.yaw)),
                          horizon=r(*style.horizon) * height, height=r(*style.camera_height),
                          curve=r(-style.curvature, style.curvature))
        self.night = rng.random() < style.p_night
        self.fog = rng.random() < style.p_fog
        self.cv = Canvas(height, width, with_depth=self.fog)
        # This image's colours: the domain palette with a per-image jitter.
        jit = style.colour_jitter
        self.class_rgb = np.clip(style.class_rgb * np.exp(rng.normal(0, 0.5 * jit, (len(style.class_rgb), 3))),
                                 0, 1).astype(np.float32)
        self.mats = {name: np.clip(style.material_rgb[i] * np.exp(rng.normal(0, 0.3 * jit, 3)), 0, 1)
                     .astype(np.float32) for name, i in MATERIAL.items()}
        if self.night:
            self.mats["glass"] = self.mats["glass"] * 0.4
        self.objects: list[tuple[float, int, Callable[[], None]]] = []

    # -- helpers ---------------------------------------------------------------------------
    def colour(self, cls: int, spread: float = 0.08, hue: float = 0.0) -> np.ndarray:
        """A colour of class `cls` for one object: the image's class colour, jittered in hue
        (degrees), saturation and brightness."""
        r, g, b = (float(v) for v in self.class_rgb[cls])
        z = self.rng.standard_normal(5)
        if hue:
            h, s_, v = colorsys.rgb_to_hsv(r, g, b)
            s_ = min(1.0, s_ * float(np.exp(0.2 * z[4])))
            r, g, b = colorsys.hsv_to_rgb((h + hue * z[3] / 360.0) % 1.0, s_, v)
        gain = np.exp(spread * z[0] + spread / 3 * z[:3])
        return np.clip(np.array([r, g, b]) * gain, 0, 1).astype(np.float32)

    def allowed(self, cls: int) -> bool:
        return cls not in self.style.excluded

    def add(self, z: float, fn, *args, **kwargs) -> None:
        """Queue an object for depth-ordered painting (far first)."""
        self.objects.append((float(z), len(self.objects), lambda: fn(*args, **kwargs)))

    def lane_x(self, lane: int) -> float:
        L = self.layout
        return L.left + (lane + 0.5) * L.lane_width

    # -- layout ----------------------------------------------------------------------------
    def _plan(self) -> None:
        rng, st = self.rng, self.style
        lanes = int(rng.integers(st.lanes[0], st.lanes[1] + 1))
        has_train = self.allowed(TRAIN) and rng.random() < st.p_train
        if has_train:
            lanes = max(lanes, 2)
        lw = rng.uniform(3.0, 3.6)
        two_way = lanes >= 2 and rng.random() < 0.65
        ego = int(rng.integers(lanes // 2, lanes)) if two_way else int(rng.integers(0, lanes))
        left = -(ego + 0.5) * lw
        verge = tuple(float(rng.uniform(1.5, 5.0)) if self.allowed(TERRAIN) and rng.random() < 0.7 else 0.0
                      for _ in range(2))
        sides = tuple("park" if rng.random() < st.p_park else "buildings" for _ in range(2))
        cross = (float(rng.uniform(22, 60)), float(rng.uniform(8, 14))) if rng.random() < 0.45 else None
        track = None
        if has_train:
            track = int(rng.choice([i for i in range(lanes) if i != ego]))
        self.layout = _Layout(lw, lanes, ego, two_way, left, left + lanes * lw,
                              (float(rng.uniform(2.0, 5.0)), float(rng.uniform(2.0, 5.0))), verge, sides, cross,
                              float(rng.uniform(70, 200)), track)

    # -- background and ground -------------------------------------------------------------
    def _sky(self) -> None:
        cv, sky = self.cv, self.class_rgb[SKY]
        t = np.clip(np.arange(self.h, dtype=np.float32) / max(self.cam.horizon, 1.0), 0, 1)[:, None]
        top, bottom = sky * 0.78, sky * 0.55 + 0.45
        column = (top[None] * (1 - t) + bottom[None] * t).astype(np.float32)[:, None, :]
        cv.rgb[:] = cv2.repeat(column, 1, self.w)  # OpenCV: numpy broadcasting over 3 channels is slow
        cv.label[:] = SKY

    def _skyline(self) -> None:
        """Distant buildings and tree lines along the horizon: one stepped silhouette."""
        rng, cam = self.rng, self.cam
        z = rng.uniform(180, 320)
        haze = self.class_rgb[SKY] * 0.5 + 0.25
        edges = np.cumsum(np.concatenate([[-rng.uniform(250, 400)], rng.uniform(12, 45, 40)]))
        edges = edges[: int(np.searchsorted(edges, 400.0)) + 1]
        n = len(edges) - 1
        trees = rng.random(n) < 0.3
        tops = np.where(trees, 0.0, rng.uniform(10, 70, n))
        xs = np.repeat(edges, 2)[1:-1]
        ys = np.repeat(tops, 2)
        outline = np.concatenate([np.stack([xs, ys], 1), [(edges[-1], 0.0), (edges[0], 0.0)]])
        px, py = cam.project(outline[:, 0], outline[:, 1], np.full(len(outline), z))
        col = self.colour(BUILDING, 0.15) * 0.55 + haze * 0.45
        self.cv.fill([np.stack([px, py], 1)], BUILDING, col, z)
        alt = [i for i in range(n) if not trees[i] and i % 2]
        if alt:
            self.cv.paint(quads(cam, edges[alt], 0.0, z, edges[np.asarray(alt) + 1], tops[alt], z),
                          col * rng.uniform(0.85, 1.15))
        if trees.any():
            idx = np.flatnonzero(trees)
            leaf = self.colour(VEGETATION) * 0.55 + haze * 0.45
            self.cv.fill(quads(cam, edges[idx], 0.0, z, edges[idx + 1], rng.uniform(8, 18, len(idx)), z),
                         VEGETATION, leaf, z)

    def _ground(self) -> None:
        L, cam, cv = self.layout, self.cam, self.cv
        sw_col, road_col = self.class_rgb[SIDEWALK], self.class_rgb[ROAD]
        vx, hz = cam.vanishing_x, cam.horizon
        big = 4.0 * (self.w + self.h)
        for side, x0, x1 in ((0, -big, vx), (1, vx, big)):
            cls = self._outer_class(side)
            cv.fill([np.array([(x0, hz), (x1, hz), (x1, hz + big), (x0, hz + big)])], cls,
                    self.class_rgb[cls], GROUND_DEPTH)
        near, far = 0.6, 3000.0
        sl, sr = L.sidewalk
        vl, vr = L.verge
        for x0, x1, cls in ((L.left - sl - vl, L.left - sl, TERRAIN), (L.right + sr, L.right + sr + vr, TERRAIN)):
            if x1 > x0:
                cv.fill([ground_strip(cam, x0, x1, near, far)], cls, self.class_rgb[cls], GROUND_DEPTH)
        cv.fill([ground_strip(cam, L.left - sl, L.left, near, far), ground_strip(cam, L.right, L.right + sr, near, far)],
                SIDEWALK, sw_col, GROUND_DEPTH)
        cv.fill([ground_strip(cam, L.left, L.right, near, far)], ROAD, road_col, GROUND_DEPTH)
        kerb = self.mats["curb"]
        cv.paint([ground_strip(cam, L.left - 0.2, L.left, near, far), ground_strip(cam, L.right, L.right + 0.2, near, far)],
                 kerb)
        if L.cross:
            z0, cw = L.cross
            csw = min(sl, sr)
            cv.fill([ground_strip(cam, -big, big, z0 - csw, z0 + cw + csw)], SIDEWALK, sw_col, GROUND_DEPTH)
            for strip in (ground_strip(cam, -big, big, z0, z0 + cw), ground_strip(cam, L.left, L.right, z0 - csw, z0 + cw + csw)):
                cv.fill([strip], ROAD, road_col, GROUND_DEPTH)  # overlapping: one call each

    def _outer_class(self, side: int) -> int:
        if self.layout.sides[side] == "park":
            return TERRAIN if self.allowed(TERRAIN) else VEGETATION
        return SIDEWALK

    def _markings(self) -> None:
        L, cam, cv, rng = self.layout, self.cam, self.cv, self.rng
        white, yellow = self.mats["lane_mark"], self.mats["lane_yellow"]
        gaps = [(0.5, L.cross[0] - 5.0), (L.cross[0] + L.cross[1] + 3, 400.0)] if L.cross else [(0.5, 400.0)]
        dash, period = rng.uniform(2.5, 4.5), rng.uniform(8.0, 13.0)
        polys, centre = [], []
        for i in range(1, L.lanes):
            xb = L.left + i * L.lane_width
            is_centre = L.two_way and i == L.lanes // 2
            for g0, g1 in gaps:
                if is_centre:
                    centre.append(ground_strip(cam, xb - 0.08, xb + 0.08, g0, g1, 10))
                    continue
                z = g0 + rng.uniform(0, period)
                while z < min(g1, 150.0):
                    polys.append(ground_strip(cam, xb - 0.07, xb + 0.07, z, min(z + dash, g1), 2))
                    z += period
        for g0, g1 in gaps:
            polys.append(ground_strip(cam, L.left + 0.25, L.left + 0.4, g0, g1, 10))
            polys.append(ground_strip(cam, L.right - 0.4, L.right - 0.25, g0, g1, 10))
        if L.cross:  # zebra crossing in front of the junction
            z0 = L.cross[0] - 4.5
            x = L.left + 0.5
            while x < L.right - 0.5:
                polys.append(ground_strip(cam, x, x + 0.5, z0, z0 + 3.0, 2))
                x += 1.0
        if polys:
            cv.paint(polys, white)
        if centre:
            cv.paint(centre, yellow if rng.random() < 0.5 else white)
        if L.track_lane is not None:
            xt = self.lane_x(L.track_lane)
            rails = [ground_strip(cam, xt + o - 0.05, xt + o + 0.05, 0.6, 400.0, 16) for o in (-0.72, 0.72)]
            cv.paint([ground_strip(cam, xt - 1.0, xt + 1.0, 0.6, 400.0, 16)], self.class_rgb[ROAD] * 0.8)
            cv.fill(rails, IGNORE_INDEX, self.mats["rail"], GROUND_DEPTH)

    # -- roadside: buildings, parks, walls, fences, hedges ---------------------------------
    def _segments(self, side: int) -> list[tuple[float, float]]:
        L = self.layout
        if L.cross:
            z0, cw = L.cross
            csw = min(L.sidewalk)
            return [(0.8, z0 - csw), (z0 + cw + csw, L.street_end)]
        return [(0.8, L.street_end)]

    def _outer_x(self, side: int) -> float:
        L = self.layout
        return (L.left - L.sidewalk[0] - L.verge[0]) if side == 0 else (L.right + L.sidewalk[1] + L.verge[1])

    def _buildings(self, side: int) -> None:
        rng, cam, st = self.rng, self.cam, self.style
        sgn = -1.0 if side == 0 else 1.0
        xo = self._outer_x(side)
        for seg_i, (z0, z1) in enumerate(self._segments(side)):
            z = z0
            first = True
            while z < z1:
                length = min(rng.uniform(8, 26), z1 - z)
                height = rng.uniform(*st.building_height)
                X = xo + sgn * (rng.uniform(0.0, 2.5) if rng.random() < 0.3 else 0.0)
                col = self.colour(BUILDING, 0.12, hue=12.0)
                self._facade(X, z, z + length, height, col)
                if first and seg_i > 0:  # block facing the camera across the junction
                    self._front_face(X, sgn, z, height, col)
                first = False
                z += length

    def _facade(self, X: float, z0: float, z1: float, height: float, col) -> None:
        cam, cv, rng = self.cam, self.cv, self.rng
        shade = 0.85 if X < 0 else 1.0
        self._slices(X, 0.0, height, z0, z1, BUILDING, col * shade)
        cv.paint([facade(cam, X, height - 0.6, height, z0, z1)], col * shade * 0.75)  # cornice
        # Windows: a grid of floors x bays, glass or lit at night.
        floor, bay = rng.uniform(2.8, 3.6), rng.uniform(2.2, 3.8)
        ys = np.arange(rng.uniform(3.0, 4.5), height - 1.5, floor)
        zs = np.arange(z0 + 0.5, z1 - 1.0, bay)
        if len(ys) and len(zs):
            wh, ww = floor * rng.uniform(0.45, 0.65), bay * rng.uniform(0.4, 0.7)
            Y, Zg = (a.ravel() for a in np.meshgrid(ys, zs, indexing="ij"))
            polys = quads(cam, X, Y, Zg, X, Y + wh, Zg + ww)
            glass = self.mats["glass"] * (shade * rng.uniform(0.8, 1.2))
            lit = rng.random(len(polys)) < (0.35 if self.night else 0.0)
            if (~lit).any():
                cv.paint(polys[~lit], glass)
            if lit.any():
                cv.paint(polys[lit], self.mats["window_lit"])
        # Ground floor: a door or shop window every so often.
        zs = np.arange(z0 + rng.uniform(1, 4), z1 - 2.0, rng.uniform(5, 10))
        if len(zs):
            cv.paint(quads(cam, X, 0.0, zs, X, 2.3, zs + 1.2), self.mats["door"])

    def _slices(self, X: float, y0: float, y1: float, z0: float, z1: float, cls: int, col) -> None:
        """A long vertical surface along the road: label and colour in one fill; in fog, depth in
        slices of about 8 m (fog is the only user of depth on such surfaces)."""
        cv = self.cv
        cv.fill([facade(self.cam, X, y0, y1, z0, z1, 8)], cls, col, z0)
        if not self.fog:
            return
        edges = z_samples(z0, z1, max(2, int((z1 - z0) / 8) + 1))
        slices = quads(self.cam, X, y0, edges[:-1], X, y1, edges[1:])
        cv.fill_depths(slices, 0.5 * (edges[:-1] + edges[1:]))

    def _front_face(self, X, sgn, z, height, col) -> None:
        cam, cv = self.cam, self.cv
        x1 = X + sgn * 40.0
        xa, xb = sorted((X, x1))
        cv.fill([quad(cam, xa, 0.0, z, xb, height, z)], BUILDING, col * 0.92, z)
        ys, xs = np.meshgrid(np.arange(3.5, height - 1.5, 3.2), np.arange(xa + 1.0, xb - 1.0, 3.0), indexing="ij")
        if ys.size:
            cv.paint(quads(cam, xs.ravel(), ys.ravel(), z, xs.ravel() + 1.4, ys.ravel() + 1.7, z), self.mats["glass"])

    def _park(self, side: int) -> None:
        rng, cam, st = self.rng, self.cam, self.style
        sgn = -1.0 if side == 0 else 1.0
        xo = self._outer_x(side)
        # Buildings far behind the park.
        xb = xo + sgn * rng.uniform(35, 70)
        self._facade(xb, 5.0, 250.0, rng.uniform(*st.building_height), self.colour(BUILDING, 0.12, hue=12.0))
        trees = []
        for _ in range(int(rng.integers(6, 14))):
            trees.append((rng.uniform(4, 90), xo + sgn * rng.uniform(1.5, 30)))
        for z, x in sorted(trees, reverse=True):
            draw_tree(cam, self.cv, rng, x, z, self.colour(VEGETATION, 0.12), self.mats)

    def _boundary(self, side: int, force: tuple[int, ...]) -> None:
        """Walls, fences and hedges along the outer edge of the sidewalk / verge."""
        rng, cam, cv = self.rng, self.cam, self.cv
        xo = self._outer_x(side)
        kinds = list(force)
        for z0, z1 in self._segments(side):
            z = z0 + rng.uniform(0.0, 10.0)
            while z < z1:
                length = min(rng.uniform(8, 30), z1 - z)
                kind = kinds.pop(0) if kinds else int(rng.choice([WALL, FENCE, VEGETATION, -1], p=[0.35, 0.35, 0.15, 0.15]))
                if kind >= 0:
                    self._barrier(kind, xo, z, z + length)
                z += length + rng.uniform(0, 15)

    def _barrier(self, kind: int, X: float, z0: float, z1: float) -> None:
        cam, cv, rng = self.cam, self.cv, self.rng
        if kind == WALL:
            h, col = rng.uniform(1.2, 2.6), self.colour(WALL, 0.1)
        elif kind == FENCE:
            h, col = rng.uniform(1.2, 2.4), self.colour(FENCE, 0.12)
        else:
            h, col = rng.uniform(0.8, 1.8), self.colour(VEGETATION, 0.12) * 0.85
        self._slices(X, 0.0, h, z0, z1, kind, col)
        if kind == WALL:
            cv.paint([facade(cam, X, h - 0.12, h, z0, z1)], np.minimum(col * 1.15, 1.0))
        elif kind == FENCE:  # slats with gaps, a top and bottom rail
            zs = np.arange(z0 + 0.3, z1 - 0.2, 0.5)
            cv.paint(quads(cam, X, 0.15, zs, X, h - 0.15, zs + 0.2), col * 0.45)
            cv.paint([facade(cam, X, h - 0.12, h, z0, z1), facade(cam, X, 0.0, 0.12, z0, z1)], col * 0.8)

    # -- street objects ---------------------------------------------------------------------
    def _poles(self) -> None:
        rng, st, L = self.rng, self.style, self.layout
        poles = []
        for side in (0, 1):
            z = rng.uniform(4.0, 12.0)
            while z < 95.0:
                if not (L.cross and L.cross[0] - 2 < z < L.cross[0] + L.cross[1] + 2):
                    poles.append([side, z, int(rng.choice(4, p=[0.3, 0.35, 0.25, 0.1]))])
                z += rng.uniform(*st.pole_spacing)
        while sum(p[1] < 45.0 for p in poles) < 2:  # room for a traffic light and a sign in view
            poles.append([int(rng.integers(2)), float(rng.uniform(5.0, 40.0)), 3])
        near = [p for p in poles if p[1] < 45.0]
        for kind in (0, 1):  # at least one traffic light (0) and one sign post (1) in view
            if not any(p[2] == kind for p in near):
                spare = [p for p in near if p[2] > 1] or [p for p in near if sum(q[2] == p[2] for q in near) > 1]
                spare[int(rng.integers(len(spare)))][2] = kind
        pole_col = self.colour(5, 0.1)
        for side, z, kind in poles:
            x = (L.left - 0.45) if side == 0 else (L.right + 0.45)
            self.add(z, self._pole, side, x, z, kind, pole_col)

    def _pole(self, side, x, z, kind, col) -> None:
        rng, cam, cv, mats = self.rng, self.cam, self.cv, self.mats
        toward_road = 1.0 if side == 0 else -1.0
        housing = self.colour(6, 0.1)
        if kind == 0:  # traffic light: on the pole top, or hanging from a mast arm over the road
            if rng.random() < 0.45:
                arm = toward_road * rng.uniform(2.5, 6.0)
                u, v = draw_pole(cam, cv, x, z, rng.uniform(5.5, 6.5), col, 0.3, arm)
                draw_traffic_light(cam, cv, rng, x, z, u * 0.8, v - 0.1, mats, housing)
                if abs(u) > 4.0:
                    draw_traffic_light(cam, cv, rng, x, z, u * 0.45, v - 0.1, mats, housing)
            else:
                h = rng.uniform(3.2, 4.2)
                draw_pole(cam, cv, x, z, h, col, 0.26)
                draw_traffic_light(cam, cv, rng, x, z, 0.0, h + 0.9, mats, housing)
            if rng.random() < 0.35:
                draw_sign(cam, cv, rng, x, z, 0.0, 2.3, mats, self.class_rgb[7])
        elif kind == 1:  # sign post with one or two plates
            h = rng.uniform(2.4, 3.4)
            draw_pole(cam, cv, x, z, h, col, 0.22)
            draw_sign(cam, cv, rng, x, z, 0.0, h, mats, self.class_rgb[7])
            if rng.random() < 0.4:
                draw_sign(cam, cv, rng, x, z, 0.0, h - 0.85, mats, self.class_rgb[7])
        elif kind == 2:  # street lamp
            h = rng.uniform(6.5, 9.0)
            arm = toward_road * rng.uniform(1.0, 2.0)
            draw_pole(cam, cv, x, z, h, col, 0.28, arm)
            head = np.array([(arm - 0.35, h - 0.35), (arm + 0.35, h - 0.35), (arm + 0.35, h), (arm - 0.35, h)])
            cv.fill([sprite(cam, x, z, head)], 5, col * 0.8, z)
            lx, ly = sprite(cam, x, z, [(arm, h - 0.4)])[0]
            cv.add_light(lx, ly, max(1.5, 0.4 * cam.scale(z)), mats["head_light"])
        else:
            draw_pole(cam, cv, x, z, rng.uniform(3.0, 8.0), col, 0.26)

    def _street_trees(self) -> None:
        rng, st, L = self.rng, self.style, self.layout
        for side in (0, 1):
            if rng.random() > 0.7:
                continue
            sw, verge = L.sidewalk[side], L.verge[side]
            offset = sw + verge / 2 if verge else sw * rng.uniform(0.55, 0.85)
            x = L.left - offset if side == 0 else L.right + offset
            z = rng.uniform(3.0, 12.0)
            while z < 110.0:
                if not (L.cross and L.cross[0] - 3 < z < L.cross[0] + L.cross[1] + 3):
                    self.add(z, draw_tree, self.cam, self.cv, rng, x, z, self.colour(VEGETATION, 0.12), self.mats)
                z += rng.uniform(*st.tree_spacing)

    def _people(self) -> None:
        rng, st, L, cam = self.rng, self.style, self.layout, self.cam
        for _ in range(int(rng.integers(st.persons[0], st.persons[1] + 1))):
            if rng.random() < 0.78:
                side = int(rng.integers(2))
                off = rng.uniform(0.4, max(0.5, L.sidewalk[side] - 0.3))
                x = L.left - off if side == 0 else L.right + off
                z = rng.uniform(3.5, 30.0)
            else:
                x = rng.uniform(L.left + 0.5, L.right - 0.5)
                z = (L.cross[0] - 3.0) if L.cross else rng.uniform(6.0, 25.0)
            colours = (self.colour(PERSON, 0.15, hue=25.0), self.colour(PERSON, 0.15, hue=15.0) * 0.6)
            self.add(z, draw_person, cam, self.cv, rng, x, z, colours, self.mats, self._scale())
        for _ in range(int(rng.integers(st.riders[0], st.riders[1] + 1))):
            vehicle = "bicycle" if rng.random() < 0.55 else "motorcycle"
            side = 1 if rng.random() < 0.75 else 0
            x = (L.right - rng.uniform(0.6, 1.4)) if side == 1 else (L.left + rng.uniform(0.6, 1.4))
            z = rng.uniform(4.5, 28.0)
            colours = (self.colour(RIDER, 0.15, hue=25.0), self.colour(RIDER, 0.15, hue=15.0) * 0.6)
            vcol = self.colour(BICYCLE if vehicle == "bicycle" else MOTORCYCLE, 0.15, hue=20.0)
            self.add(z, draw_rider, cam, self.cv, rng, x, z, vehicle, colours, vcol, self.mats, self._scale())
        for cls, fn, p in ((BICYCLE, draw_bicycle, 0.6), (MOTORCYCLE, draw_motorcycle, 0.45)):
            for _ in range(int(rng.integers(1, 3)) if rng.random() < p else 0):
                side = int(rng.integers(2))
                off = rng.uniform(0.5, 1.2)
                x = L.left - off if side == 0 else L.right + off
                z = rng.uniform(4.0, 22.0)
                self.add(z, fn, cam, self.cv, rng, x, z, self.colour(cls, 0.15, hue=20.0), self.mats,
                         bool(rng.random() < 0.5), self._scale())

    def _scale(self) -> float:
        return float(self.rng.uniform(*self.style.object_scale))

    def _vehicles(self) -> None:
        rng, st, L, cam = self.rng, self.style, self.layout, self.cam
        taken: dict[object, list[tuple[float, float]]] = {}

        def place(key, length, z_lo, z_hi) -> float | None:
            for _ in range(6):
                z = rng.uniform(z_lo, z_hi)
                if all(z + length + 2 < a or z > b + 2 for a, b in taken.get(key, [])):
                    taken.setdefault(key, []).append((z, z + length))
                    return z
            return None

        def lane_slot(length, z_lo=7.0, z_hi=70.0):
            lanes = [i for i in range(L.lanes) if i != L.track_lane] or [0]
            lane = int(rng.choice(lanes))
            lo = max(z_lo, 9.0) if lane == L.ego_lane else z_lo
            z = place(("lane", lane), length, lo, z_hi)
            oncoming = L.two_way and lane < L.lanes // 2
            return lane, z, oncoming

        if L.track_lane is not None:
            z = place(("lane", L.track_lane), 28.0, 10.0, 45.0)
            if z is not None:
                self.add(z, draw_train, cam, self.cv, rng, self.lane_x(L.track_lane), z,
                         self.colour(TRAIN, 0.12, hue=15.0), self.mats)
        heavy = []
        if self.allowed(TRUCK) and rng.random() < st.p_truck:
            heavy += [TRUCK] * (2 if rng.random() < 0.3 else 1)
        if self.allowed(BUS) and rng.random() < st.p_bus:
            heavy.append(BUS)
        for cls in heavy:
            length = 8.0 if cls == TRUCK else 12.0
            if cls == BUS and L.cross and rng.random() < 0.3:
                self.add(L.cross[0] + 2, draw_bus, cam, self.cv, rng, rng.uniform(-15, 15), L.cross[0] + 2,
                         self.colour(BUS, 0.12, hue=15.0), self.mats, False, False, self._scale())
                continue
            lane, z, oncoming = lane_slot(length, 9.0, 60.0)
            if z is None:
                continue
            colour = self.colour(cls, 0.12, hue=15.0)
            if cls == TRUCK:
                self.add(z, draw_truck, cam, self.cv, rng, self.lane_x(lane), z, colour, self.mats, oncoming,
                         self._scale())
            else:
                self.add(z, draw_bus, cam, self.cv, rng, self.lane_x(lane), z, colour, self.mats, True, oncoming,
                         self._scale())
        for _ in range(int(rng.integers(st.cars[0], st.cars[1] + 1))):
            colour = self.colour(CAR, 0.2, hue=35.0)
            where = rng.random()
            if where < 0.3:  # parked along a kerb
                side = int(rng.integers(2))
                x = (L.left + 1.1) if side == 0 else (L.right - 1.1)
                if L.track_lane is not None and abs(x - self.lane_x(L.track_lane)) < 2.5:
                    continue
                z = place(("kerb", side), 4.5, 4.0, 60.0)
                if z is not None:
                    self.add(z, draw_car, cam, self.cv, rng, x, z, colour, self.mats, True, False, self._scale())
            elif where < 0.42 and L.cross:  # crossing the junction
                z = L.cross[0] + rng.uniform(0.5, L.cross[1] - 2.5)
                self.add(z, draw_car, cam, self.cv, rng, rng.uniform(-25, 25), z, colour, self.mats, False, False,
                         self._scale())
            else:
                lane, z, oncoming = lane_slot(4.6)
                if z is not None:
                    self.add(z, draw_car, cam, self.cv, rng, self.lane_x(lane), z, colour, self.mats, True,
                             oncoming, self._scale())

    def _ego(self) -> None:
        st, cv, h, w = self.style, self.cv, self.h, self.w
        if st.ego == "none":
            return
        x = np.linspace(0, w, 24)
        if st.ego == "hood":  # a bonnet curving up into the bottom of the frame
            top = self.rng.uniform(0.06, 0.1) * h
            y = h - top * (1.0 - 0.8 * ((x - w / 2) / (w / 2)) ** 2)
            colour = self.mats["hood"]
        else:  # a dashboard: flatter and higher
            top = self.rng.uniform(0.08, 0.14) * h
            y = h - top * (1.0 - 0.25 * ((x - w / 2) / (w / 2)) ** 2)
            colour = self.mats["hood"] * 0.6
        poly = np.concatenate([np.stack([x, y], 1), [(w, h + 2), (0, h + 2)]])
        cv.fill([poly], IGNORE_INDEX, colour, 0.5)

    def _sun_shadows(self) -> None:
        if self.night or self.rng.random() > self.style.p_sun:
            return
        L, cam = self.layout, self.cam
        side = int(self.rng.integers(2))
        xo = self._outer_x(side)
        reach = self.rng.uniform(4.0, 14.0)
        x0, x1 = (xo, xo + reach) if side == 0 else (xo - reach, xo)
        poly = ground_strip(cam, x0, x1, 0.6, L.street_end, 12)
        cv2.fillPoly(self.shadow, [np.round(np.clip(poly, -3e4, 3e4)).astype(np.int32)], 1)

    # -- main ------------------------------------------------------------------------------
    def build(self) -> None:
        self._plan()
        self._sky()
        self._skyline()
        self._ground()
        self._markings()
        self._sun_shadows()
        for side in (0, 1):
            if self.layout.sides[side] == "park":
                self._park(side)
            else:
                self._buildings(side)
        # Every image gets at least one wall and one fence piece somewhere.
        first = int(self.rng.integers(2))
        self._boundary(first, (WALL,))
        self._boundary(1 - first, (FENCE,))
        self._poles()
        self._street_trees()
        self._people()
        self._vehicles()
        for _, _, draw in sorted(self.objects, key=lambda o: (-o[0], o[1])):
            draw()
        self._ego()


# ------------------------------------------------------------------------------------------
# CLI: preview grid and render benchmark.


def colourise_labels(label: np.ndarray) -> np.ndarray:
    """The Cityscapes colour of every train id (ignore in black), for previews."""
    from cityscapesscripts.helpers.labels import trainId2label
    lut = np.zeros((256, 3), np.uint8)
    for tid, lab in trainId2label.items():
        if 0 <= tid < 255:
            lut[tid] = lab.color
    return lut[label]


def preview(path: str, samples: int, height: int, width: int, seed: int, domains: list[str]) -> None:
    from benchmark.atomic import atomic_path
    rows = []
    for d_i, domain in enumerate(domains):
        rng = np.random.default_rng([seed, d_i])
        tiles = []
        for _ in range(samples):
            rgb, label = render_scene(domain, rng, height, width)
            tiles.append(np.concatenate([rgb, colourise_labels(label)], axis=0))
            tiles.append(np.full((2 * height, 4, 3), 255, np.uint8))
        row = np.concatenate(tiles, axis=1)
        cv2.putText(row, domain, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        rows.append(row)
        rows.append(np.full((6, row.shape[1], 3), 255, np.uint8))
    grid = np.concatenate(rows, axis=0)
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write preview image {path}")


def benchmark(n: int, height: int, width: int, seed: int, domains: list[str]) -> dict[str, tuple[float, float]]:
    """Images per second per domain, by wall clock and by this process's CPU time (the latter is
    what one core gives when other processes compete for the machine)."""
    rates = {}
    for d_i, domain in enumerate(domains):
        rng = np.random.default_rng([seed, d_i])
        render_scene(domain, rng, height, width)  # warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            render_scene(domain, rng, height, width)
        rates[domain] = (n / (time.perf_counter() - t0), n / max(time.process_time() - c0, 1e-9))
    return rates


@guarded
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.data.scenes", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preview", metavar="PNG", help="write a grid of samples (image above labels) per domain")
    parser.add_argument("--benchmark", action="store_true", help="print rendering speed (images/s, one core)")
    parser.add_argument("--samples", type=int, default=4, help="samples per domain in the preview (default 4)")
    parser.add_argument("--images", type=int, default=40, help="images per domain for --benchmark (default 40)")
    parser.add_argument("--size", type=int, nargs=2, default=(256, 512), metavar=("H", "W"),
                        help="scene size (default 256 512)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--domains", nargs="+", default=list(DOMAINS), choices=list(DOMAINS))
    args = parser.parse_args(argv)
    if not args.preview and not args.benchmark:
        parser.error("nothing to do: give --preview PNG and/or --benchmark")
    if args.samples < 1 or args.images < 1:
        parser.error("--samples and --images must be at least 1")
    h, w = args.size
    if h < MIN_SIZE or w < MIN_SIZE:
        parser.error(f"--size must be at least {MIN_SIZE} {MIN_SIZE}")
    if args.preview:
        preview(args.preview, args.samples, h, w, args.seed, args.domains)
        print(f"wrote {args.preview}")
    if args.benchmark:
        cv2.setNumThreads(1)
        for domain, (wall, cpu) in benchmark(args.images, h, w, args.seed, args.domains).items():
            print(f"{domain:12s} {wall:6.1f} images/s wall, {cpu:6.1f} images/s per CPU second at {h}x{w}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
