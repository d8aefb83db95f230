"""Per-domain looks and content statistics of the synthetic street scenes (see scenes.py).

Every domain draws the same street grammar; a `DomainStyle` only changes the camera, how often
and how large things appear, and how they look: a class palette shifted away from one canonical
palette, texture strength, lighting, weather and sensor effects. Shapes and layout therefore
transfer between domains while colours and textures do not, which is what makes a
domain-generalization gap.

Palettes are fixed per domain (drawn once from a per-domain constant seed), never from the
caller's generator, so a domain looks the same in every split and every run.
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from benchmark.data.classes import NUM_CLASSES

# Train ids by name, for readability of the scene code.
ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, LIGHT, SIGN, VEGETATION, TERRAIN, SKY = range(11)
PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE = range(11, 19)

# A realistic daylight palette (RGB, 0..255) that every domain shifts from.
CANONICAL_CLASS_RGB = np.array([
    (88, 86, 92),     # road: asphalt
    (168, 150, 140),  # sidewalk: paving
    (150, 122, 100),  # building: brick / render
    (190, 184, 160),  # wall: concrete
    (125, 110, 80),   # fence
    (72, 78, 86),     # pole
    (38, 40, 34),     # traffic light housing
    (225, 195, 40),   # traffic sign face
    (58, 108, 42),    # vegetation
    (140, 146, 78),   # terrain: grass / soil
    (135, 178, 228),  # sky
    (110, 60, 72),    # person clothing
    (60, 72, 120),    # rider clothing
    (45, 70, 140),    # car paint
    (205, 205, 196),  # truck
    (225, 168, 36),   # bus
    (185, 45, 48),    # train
    (40, 40, 48),     # motorcycle
    (120, 92, 64),    # bicycle frame
], dtype=np.float32)

# Materials that carry a class label but not its main colour.
MATERIAL_NAMES = (
    "glass", "window_lit", "lane_mark", "lane_yellow", "tyre", "tail_light", "head_light", "skin", "hair",
    "lamp_red", "lamp_amber", "lamp_green", "sign_red", "sign_blue", "sign_white", "trunk", "curb",
    "rail", "hood", "door",
)
CANONICAL_MATERIAL_RGB = np.array([
    (52, 64, 78), (255, 214, 120), (225, 225, 220), (230, 190, 50), (22, 22, 24), (200, 30, 30),
    (245, 240, 210), (205, 160, 130), (45, 32, 25), (240, 40, 30), (250, 170, 20), (40, 220, 90),
    (205, 35, 35), (35, 75, 190), (238, 238, 232), (85, 62, 42), (130, 126, 122), (110, 100, 95),
    (30, 32, 38), (70, 50, 40),
], dtype=np.float32)
MATERIAL = {name: i for i, name in enumerate(MATERIAL_NAMES)}

# How strongly each class is textured (relative; scaled by the domain's `texture`).
CLASS_TEXTURE = np.array([
    0.10, 0.10, 0.10, 0.08, 0.12, 0.04, 0.03, 0.03, 0.28, 0.20, 0.03,
    0.06, 0.06, 0.04, 0.04, 0.04, 0.04, 0.05, 0.05,
], dtype=np.float32)


@dataclasses.dataclass(frozen=True)
class DomainStyle:
    """How one synthetic domain looks and what its streets contain. Ranges are (low, high)."""

    name: str
    # Camera: horizon row as a fraction of the height, height above ground (m), focal length as
    # a fraction of the width, largest shift of the vanishing point (fraction of the width).
    horizon: tuple[float, float]
    camera_height: tuple[float, float]
    focal: tuple[float, float]
    yaw: float
    curvature: float                 # largest road curvature (lateral m per m^2 of depth)
    ego: str                         # "none" | "hood" (Cityscapes' car bonnet) | "dashboard" (BDD)
    # Content statistics: counts per image (inclusive ranges) and probabilities per image.
    lanes: tuple[int, int]
    cars: tuple[int, int]
    persons: tuple[int, int]
    riders: tuple[int, int]
    p_truck: float
    p_bus: float
    p_train: float
    pole_spacing: tuple[float, float]     # metres between poles along each kerb
    tree_spacing: tuple[float, float]
    building_height: tuple[float, float]
    p_park: float                    # chance that a side of the street is a park, not buildings
    object_scale: tuple[float, float]  # size multiplier of people and vehicles
    excluded: frozenset[int]         # train ids the real dataset never labels
    # Appearance.
    palette_seed: int
    palette_shift: float             # spread of per-class hue / saturation / value offsets
    hue: float                       # global hue rotation (degrees)
    saturation: float
    value: float
    colour_jitter: float             # per-image spread of every class colour
    texture: float
    grain: float                     # texture grain size in pixels at 512 px width
    contrast: float
    tint: tuple[float, float, float]
    brightness: tuple[float, float]
    p_night: float
    p_fog: float
    p_sun: float                     # chance of hard cast shadows
    blur: tuple[float, float]        # Gaussian blur sigma (px at 512 px width)
    noise: float                     # sensor noise standard deviation (0..1 scale)
    vignette: float
    class_rgb: np.ndarray = dataclasses.field(init=False, repr=False, compare=False)
    material_rgb: np.ndarray = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.palette_seed)
        class_rgb = _separate(_shift_palette(CANONICAL_CLASS_RGB, rng, self.palette_shift, self.hue,
                                             self.saturation, self.value))
        material_rgb = _shift_palette(CANONICAL_MATERIAL_RGB, rng, self.palette_shift * 0.5, self.hue * 0.5,
                                      self.saturation, 1.0)
        object.__setattr__(self, "class_rgb", class_rgb)
        object.__setattr__(self, "material_rgb", material_rgb)


# Classes that touch in every street and must stay apart in colour within a domain.
_NEIGHBOURS = ((ROAD, SIDEWALK), (SIDEWALK, TERRAIN), (SIDEWALK, WALL), (BUILDING, WALL), (BUILDING, FENCE),
               (ROAD, POLE), (VEGETATION, TERRAIN), (WALL, FENCE), (PERSON, RIDER), (POLE, LIGHT))
_MIN_DISTANCE = 40.0 / 255.0


def _separate(rgb: np.ndarray) -> np.ndarray:
    """Brighten or darken the second colour of each neighbouring pair until they are apart."""
    rgb = rgb.copy()
    for a, b in _NEIGHBOURS:
        step = 1.15 if rgb[b].mean() >= rgb[a].mean() else 1 / 1.15
        for _ in range(12):
            if np.linalg.norm(rgb[a] - rgb[b]) >= _MIN_DISTANCE:
                break
            rgb[b] = np.clip(rgb[b] * step + (0.02 if step > 1 else 0.0), 0.0, 1.0)
    return rgb


def _shift_palette(rgb255: np.ndarray, rng: np.random.Generator, shift: float, hue: float,
                   saturation: float, value: float) -> np.ndarray:
    """Rotate hue, scale saturation / value, plus a per-colour random offset of size `shift`.

    Returns float32 RGB in 0..1.
    """
    hsv = cv2.cvtColor((rgb255 / 255.0).astype(np.float32)[None], cv2.COLOR_RGB2HSV)[0]
    n = len(rgb255)
    hsv[:, 0] = (hsv[:, 0] + hue + rng.normal(0.0, 28.0 * shift, n)) % 360.0
    hsv[:, 1] = np.clip(hsv[:, 1] * saturation * np.exp(rng.normal(0.0, 0.35 * shift, n)), 0.0, 1.0)
    hsv[:, 2] = np.clip(hsv[:, 2] * value * np.exp(rng.normal(0.0, 0.25 * shift, n)), 0.02, 1.0)
    return np.clip(cv2.cvtColor(hsv[None], cv2.COLOR_HSV2RGB)[0], 0.0, 1.0).astype(np.float32)


_COMMON = dict(
    yaw=0.06, curvature=0.0015, lanes=(2, 4), cars=(3, 8), persons=(3, 8), riders=(2, 3),
    p_truck=0.55, p_bus=0.45, p_train=0.35, pole_spacing=(9.0, 16.0), tree_spacing=(7.0, 14.0),
    building_height=(8.0, 28.0), p_park=0.2, object_scale=(0.95, 1.05), excluded=frozenset(),
    palette_shift=0.0, hue=0.0, saturation=1.0, value=1.0, colour_jitter=0.12, texture=1.0, grain=2.0,
    contrast=1.0, tint=(1.0, 1.0, 1.0), brightness=(0.9, 1.1), p_night=0.0, p_fog=0.05, p_sun=0.3,
    blur=(0.3, 0.7), noise=0.01, vignette=0.0,
)


def _style(name: str, **overrides) -> DomainStyle:
    return DomainStyle(name=name, **{**_COMMON, **overrides})


def cityscapes_style() -> DomainStyle:
    """German cities by day: muted colours, greenish-grey cast, the car's bonnet at the bottom."""
    return _style(
        "cityscapes", horizon=(0.40, 0.47), camera_height=(1.15, 1.35), focal=(1.0, 1.15), ego="hood",
        palette_seed=11, palette_shift=0.15, saturation=0.78, tint=(0.95, 1.0, 0.95), contrast=0.9,
        texture=1.0, grain=2.0, blur=(0.4, 0.8), noise=0.012, p_sun=0.25)


def bdd_style() -> DomainStyle:
    """US dashcam video: wide lens, dashboard, night frames (about one in seven), blur, noise, vignetting."""
    return _style(
        "bdd", horizon=(0.46, 0.56), camera_height=(1.25, 1.6), focal=(0.7, 0.85), ego="dashboard",
        yaw=0.08, lanes=(2, 5), cars=(4, 10), persons=(2, 6), riders=(1, 3), p_truck=0.6, p_bus=0.35,
        p_train=0.3, building_height=(5.0, 22.0), p_park=0.3, palette_seed=23, palette_shift=0.35, hue=-5.0,
        saturation=1.0, value=0.95, colour_jitter=0.18, texture=1.15, grain=3.0, tint=(1.06, 1.0, 0.9),
        brightness=(0.8, 1.05), p_night=0.15, p_fog=0.1, p_sun=0.2, blur=(0.6, 1.2), noise=0.02,
        vignette=0.35)


def mapillary_style() -> DomainStyle:
    """Crowd-sourced photos worldwide: many cameras and cities, its own colour cast."""
    return _style(
        "mapillary", horizon=(0.38, 0.53), camera_height=(1.1, 1.8), focal=(0.9, 1.15), yaw=0.1,
        curvature=0.003, ego="none", lanes=(1, 4), cars=(2, 9), persons=(3, 9), riders=(2, 4), p_park=0.3,
        object_scale=(1.0, 1.2), palette_seed=37, palette_shift=0.6, hue=32.0, saturation=1.1,
        colour_jitter=0.15, texture=1.1, grain=2.5, contrast=1.05, brightness=(0.8, 1.2), p_night=0.05,
        p_fog=0.1, p_sun=0.35, blur=(0.2, 1.2), noise=0.02)


def gtav_style() -> DomainStyle:
    """A video game's Los Angeles: saturated, warm, sharp, busy roads, crisp synthetic textures."""
    return _style(
        "gtav", horizon=(0.44, 0.50), camera_height=(1.4, 1.8), focal=(0.92, 1.05), ego="none", lanes=(2, 5),
        cars=(6, 12), persons=(3, 7), riders=(2, 3), p_truck=0.75, p_bus=0.4, p_train=0.3,
        building_height=(6.0, 40.0), tree_spacing=(9.0, 18.0), palette_seed=41, palette_shift=0.35, hue=10.0,
        saturation=1.12, value=1.05, colour_jitter=0.15, texture=0.8, grain=1.2, contrast=1.1,
        tint=(1.08, 1.0, 0.86), brightness=(0.95, 1.2), p_night=0.08, p_fog=0.1, p_sun=0.6, blur=(0.0, 0.2),
        noise=0.0)


def synthia_style() -> DomainStyle:
    """SYNTHIA-RAND: random high viewpoints, flat rendering, crowds; no terrain, truck or train."""
    return _style(
        "synthia", horizon=(0.12, 0.28), camera_height=(4.5, 8.0), focal=(0.7, 0.85), yaw=0.1, ego="none",
        cars=(4, 10), persons=(6, 14), riders=(2, 4), p_truck=0.0, p_train=0.0, p_bus=0.5,
        object_scale=(1.05, 1.25), building_height=(10.0, 35.0), p_park=0.25,
        excluded=frozenset({TERRAIN, TRUCK, TRAIN}), palette_seed=53, palette_shift=0.6, hue=-12.0,
        saturation=1.2, value=1.1, colour_jitter=0.1, texture=0.3, grain=4.0, contrast=1.1,
        brightness=(1.0, 1.2), p_night=0.1, p_fog=0.1, p_sun=0.15, blur=(0.0, 0.3), noise=0.0)


DOMAINS: dict[str, DomainStyle] = {
    s.name: s for s in (cityscapes_style(), bdd_style(), mapillary_style(), gtav_style(), synthia_style())
}
assert all(s.class_rgb.shape == (NUM_CLASSES, 3) for s in DOMAINS.values())
