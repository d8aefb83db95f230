"""The 16 Cityscapes-C corruptions: the `imagecorruptions` 1.1.2 algorithms on today's stack.

`corrupt(image, name, severity, seed)` returns, pixel for pixel, what
`numpy.random.seed(seed); imagecorruptions.corrupt(image, corruption_name=name, severity=severity)`
returns once the package's three breakages are mended (pkg_resources, skimage's `multichannel=`,
`np.float_`), for every corruption but `impulse_noise`. That one draws from scikit-image's own
generator, which the package never seeds; here it is seeded with `seed` (a `numpy.random.Generator`,
same draws as `skimage.util.random_noise(..., rng=seed)`).

Draws come from a private `numpy.random.RandomState(seed)`, which yields the same numbers as the
global one after `numpy.random.seed(seed)`, so the caller's global random state is never touched.
The package itself is not imported (its import fails on pkg_resources); its frost images are read
from its installed folder. Slow loops are replaced by bit-exact fast paths
(`benchmark.data._corruption_kernels`): glass blur, motion blur, brightness, saturate, snow's
zoom and fog's plasma fractal; the per-pixel endings (blend, clip, * 255, uint8) of snow, fog,
spatter, the noises and contrast run in row blocks instead of on full-frame temporaries.
"""
from __future__ import annotations

import functools
import importlib.util
from io import BytesIO
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from skimage.filters import gaussian as sk_gaussian

from benchmark.data import _corruption_kernels as kernels

REFERENCE_PACKAGE = "imagecorruptions"
REFERENCE_VERSION = "1.1.2"  # the release whose algorithms and constants these are

CORRUPTIONS: tuple[str, ...] = (
    "motion_blur", "defocus_blur", "glass_blur", "gaussian_blur",
    "gaussian_noise", "impulse_noise", "shot_noise", "speckle_noise",
    "brightness", "contrast", "saturate", "jpeg_compression",
    "snow", "spatter", "fog", "frost",
)
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
MIN_SIDE = 32  # the package refuses smaller images


# ---------------------------------------------------------------------------------------------
# Noise
# ---------------------------------------------------------------------------------------------
def _gaussian_noise(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    c = [.08, .12, 0.18, 0.26, 0.38][severity - 1]
    noise = rng.normal(size=x.shape, scale=c)

    def add_image(block, rows):  # x / 255. + noise
        block += x[rows] / 255.

    return kernels.unit_to_uint8(noise, add_image)


def _shot_noise(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    c = [60, 25, 12, 5, 3][severity - 1]
    x = x / 255.
    return kernels.unit_to_uint8(rng.poisson(x * c) / float(c))


def _impulse_noise(x: np.ndarray, severity: int, generator: np.random.Generator) -> np.ndarray:
    """skimage.util.random_noise(x / 255., mode='s&p', amount=c, rng=generator), clipped, * 255.

    skimage flips a pixel-channel where random() <= amount, then salts it where a second
    random() <= 0.5 and peppers it otherwise; untouched values survive the /255 * 255 round
    trip exactly for every uint8 value, so the result is the input with 0 / 255 written in.
    """
    c = [.03, .06, .09, 0.17, 0.27][severity - 1]
    flipped = generator.random(x.shape) <= c
    salted = generator.random(x.shape) <= 0.5
    out = x.copy()
    out[flipped & salted] = 255
    out[flipped & ~salted] = 0
    return out


def _speckle_noise(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    c = [.15, .2, 0.35, 0.45, 0.6][severity - 1]
    noise = rng.normal(size=x.shape, scale=c)

    def add_scaled_image(block, rows):  # x + x * noise, with x / 255.
        image = x[rows] / 255.
        block *= image
        block += image

    return kernels.unit_to_uint8(noise, add_scaled_image)


# ---------------------------------------------------------------------------------------------
# Blur
# ---------------------------------------------------------------------------------------------
def _gaussian_rgb(x: np.ndarray, sigma: float) -> np.ndarray:
    # the package's gaussian(..., multichannel=True), in today's spelling
    return sk_gaussian(x, sigma=sigma, channel_axis=-1)


def _gaussian_blur(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    c = [1, 2, 3, 4, 6][severity - 1]
    return kernels.unit_to_uint8(_gaussian_rgb(x / 255., c))


def _glass_blur(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    sigma, max_delta, iterations = [(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2),
                                    (1.5, 4, 2)][severity - 1]
    x = np.uint8(_gaussian_rgb(x / 255., sigma) * 255)
    x = kernels.glass_shuffle(x, max_delta, iterations, rng)
    return kernels.unit_to_uint8(_gaussian_rgb(x / 255., sigma))


def _disk(radius: int, alias_blur: float) -> np.ndarray:
    if radius <= 8:
        support, ksize = np.arange(-8, 8 + 1), (3, 3)
    else:
        support, ksize = np.arange(-radius, radius + 1), (5, 5)
    xx, yy = np.meshgrid(support, support)
    aliased = np.array((xx ** 2 + yy ** 2) <= radius ** 2, dtype=np.float32)
    aliased /= np.sum(aliased)
    return cv2.GaussianBlur(aliased, ksize=ksize, sigmaX=alias_blur)  # anti-alias the disk


def _defocus_blur(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    radius, alias_blur = [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)][severity - 1]
    x = x / 255.
    kernel = _disk(radius, alias_blur)
    channels = np.stack([cv2.filter2D(x[:, :, d], -1, kernel) for d in range(3)], axis=-1)
    return kernels.unit_to_uint8(channels)


def _motion_blur(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    radius, sigma = [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)][severity - 1]
    angle = rng.uniform(-45, 45)
    out = kernels.motion_blur(x, radius, sigma, angle)
    return np.clip(out, 0, 255, out=out)


# ---------------------------------------------------------------------------------------------
# Digital
# ---------------------------------------------------------------------------------------------
def _brightness(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    c = [.1, .2, .3, .4, .5][severity - 1]
    return kernels.hsv_adjust_to_uint8(x, lambda h, s, v: (h, s, np.clip(v + c, 0, 1)))


def _saturate(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    c = [(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)][severity - 1]
    return kernels.hsv_adjust_to_uint8(x, lambda h, s, v: (h, np.clip(s * c[0] + c[1], 0, 1), v))


def _contrast(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    c = [0.4, .3, .2, .1, .05][severity - 1]
    x = x / 255.
    means = np.mean(x, axis=(0, 1), keepdims=True)  # of the whole float64 frame, as the package

    def stretch(block, rows):  # (x - means) * c + means
        block -= means
        block *= c
        block += means

    return kernels.unit_to_uint8(x, stretch)


def _jpeg_compression(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    quality = [25, 18, 15, 10, 7][severity - 1]
    buffer = BytesIO()
    Image.fromarray(x).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer))


# ---------------------------------------------------------------------------------------------
# Weather
# ---------------------------------------------------------------------------------------------
def _clipped_zoom(img: np.ndarray, zoom_factor: float) -> np.ndarray:
    """The centre of a 2-D `img` zoomed (linear) by `zoom_factor`, about the size of `img`."""
    rows = int(np.ceil(img.shape[0] / float(zoom_factor)))
    top = (img.shape[0] - rows) // 2
    cols = int(np.ceil(img.shape[1] / float(zoom_factor)))
    left = (img.shape[1] - cols) // 2
    return kernels.zoom_linear(img[top:top + rows, left:left + cols], zoom_factor)


def _snow(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    loc, scale, zoom, threshold, radius, sigma, blend = [
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4, 0.9, 12, 8, 0.7), (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)][severity - 1]
    x = np.array(x, dtype=np.float32) / 255.
    layer = rng.normal(size=x.shape[:2], loc=loc, scale=scale)
    layer = _clipped_zoom(layer, zoom)
    layer[layer < threshold] = 0
    layer = np.clip(layer, 0, 1)
    layer = kernels.motion_blur(layer, radius, sigma, rng.uniform(-135, -45))
    # the package rounds the snow layer to 8 bits and crops it to the image
    layer = np.round(layer * 255).astype(np.uint8)[:x.shape[0], :x.shape[1]]
    gray = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)
    if layer.shape == x.shape[:2]:
        return kernels.snow_to_uint8(x, gray, layer, blend)
    # the package's fallback when the zoomed layer comes out smaller than the image
    layer = layer[..., np.newaxis] / 255.
    x = blend * x + (1 - blend) * np.maximum(x, gray[..., np.newaxis] * 1.5 + 0.5)
    x[:layer.shape[0], :layer.shape[1]] += layer + np.rot90(layer, k=2)
    return np.clip(x, 0, 1) * 255


def _spatter(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    loc, scale, sigma, threshold, intensity, mud = [
        (0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0),
        (0.65, 0.3, 2, 0.68, 0.5, 0), (0.65, 0.3, 1, 0.65, 1.5, 1),
        (0.67, 0.4, 1, 0.65, 1.5, 1)][severity - 1]
    liquid = rng.normal(size=x.shape[:2], loc=loc, scale=scale)
    liquid = sk_gaussian(liquid, sigma=sigma)
    liquid[liquid < threshold] = 0
    if mud == 0:
        liquid = (liquid * 255).astype(np.uint8)
        dist = 255 - cv2.Canny(liquid, 50, 150)
        dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
        _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
        dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
        dist = cv2.equalizeHist(dist)
        ker = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
        dist = cv2.filter2D(dist, cv2.CV_8U, ker)
        dist = cv2.blur(dist, (3, 3)).astype(np.float32)
        m = cv2.cvtColor(liquid * dist, cv2.COLOR_GRAY2BGRA)
        m /= np.max(m, axis=(0, 1))
        m *= intensity
        ones = np.ones_like(m[..., :1])
        # water is pale turquoise
        color = np.concatenate((175 / 255. * ones, 238 / 255. * ones, 238 / 255. * ones), axis=2)
        color = cv2.cvtColor(color, cv2.COLOR_BGR2BGRA)
        x = cv2.cvtColor(np.array(x, dtype=np.float32) / 255., cv2.COLOR_BGR2BGRA)
        return cv2.cvtColor(np.clip(x + m * color, 0, 1), cv2.COLOR_BGRA2BGR) * 255
    m = sk_gaussian((liquid > threshold).astype(np.float32), sigma=intensity)
    m[m < 0.8] = 0
    return kernels.mud_to_uint8(x, m, (63 / 255., 42 / 255., 20 / 255.))  # mud brown


def _fog(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    strength, decay = [(1.5, 2), (2., 2), (2.5, 1.7), (2.5, 1.5), (3., 1.4)][severity - 1]
    hgt, wid = x.shape[:2]
    mapsize = 1 << (max(x.shape) - 1).bit_length()  # next power of two of the longest side
    plasma = kernels.plasma_fractal(mapsize, decay, rng, hgt, wid)
    plasma *= strength
    return kernels.fog_to_uint8(x, plasma, strength)


_FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg",
                "frost6.jpg")


def frost_dir() -> Path:
    """The frost images shipped as package data of the installed `imagecorruptions`.

    Located by path: importing the package fails on today's setuptools (pkg_resources).
    """
    spec = importlib.util.find_spec(REFERENCE_PACKAGE)
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "the 'imagecorruptions' package is not installed; its frost images are needed "
            "(pip install --no-deps imagecorruptions==1.1.2)")
    folder = Path(spec.origin).parent / "frost"
    missing = [name for name in _FROST_FILES if not (folder / name).is_file()]
    if missing:
        raise RuntimeError(f"imagecorruptions frost images missing in {folder}: {missing}")
    return folder


@functools.lru_cache(maxsize=8)
def _frost_resized(index: int, hgt: int, wid: int) -> np.ndarray:
    """The package's frost image `index`, rescaled to cover an (hgt, wid) image (cached)."""
    path = frost_dir() / _FROST_FILES[index]
    frost = cv2.imread(str(path))
    if frost is None:
        raise RuntimeError(f"cannot read frost image {path}")
    fh, fw = frost.shape[:2]
    if fh >= hgt and fw >= wid:
        scaling = 1
    elif fh < hgt and fw >= wid:
        scaling = hgt / fh
    elif fh >= hgt and fw < wid:
        scaling = wid / fw
    else:
        scaling = np.maximum(hgt / fh, wid / fw)
    scaling *= 1.1
    size = (int(np.ceil(fw * scaling)), int(np.ceil(fh * scaling)))
    resized = cv2.resize(frost, dsize=size, interpolation=cv2.INTER_CUBIC)
    resized.setflags(write=False)
    return resized


def _frost(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    weight_image, weight_frost = [(1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7),
                                  (0.6, 0.75)][severity - 1]
    index = rng.randint(5)  # the package draws from the first five of its six images
    frost = _frost_resized(index, x.shape[0], x.shape[1])
    top = rng.randint(0, frost.shape[0] - x.shape[0])
    left = rng.randint(0, frost.shape[1] - x.shape[1])
    crop = frost[top:top + x.shape[0], left:left + x.shape[1]][..., [2, 1, 0]]
    return np.clip(weight_image * x + weight_frost * crop, 0, 255)


_FUNCTIONS = {
    "motion_blur": _motion_blur, "defocus_blur": _defocus_blur, "glass_blur": _glass_blur,
    "gaussian_blur": _gaussian_blur, "gaussian_noise": _gaussian_noise,
    "impulse_noise": _impulse_noise, "shot_noise": _shot_noise, "speckle_noise": _speckle_noise,
    "brightness": _brightness, "contrast": _contrast, "saturate": _saturate,
    "jpeg_compression": _jpeg_compression, "snow": _snow, "spatter": _spatter, "fog": _fog,
    "frost": _frost,
}
assert tuple(_FUNCTIONS) == tuple(sorted(_FUNCTIONS, key=CORRUPTIONS.index))


def _check_image(image) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 RGB, got dtype {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:  # grayscale: the package replicates it to three channels
        image = np.stack((image,) * 3, axis=-1)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W, 3) (or (H, W)), got {image.shape}")
    if image.shape[0] < MIN_SIDE or image.shape[1] < MIN_SIDE:
        raise ValueError(f"image must be at least {MIN_SIDE}x{MIN_SIDE} pixels, got "
                         f"{image.shape[0]}x{image.shape[1]}")
    return np.ascontiguousarray(image)


def corrupt(image_rgb_uint8: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    """Corrupt an RGB uint8 image (H, W, 3) with corruption `name` at `severity` (1-5).

    Returns a new uint8 (H, W, 3) array; the same (image, name, severity, seed) always gives the
    same pixels, equal to the package's under `numpy.random.seed(seed)` (module docstring).
    """
    if name not in _FUNCTIONS:
        raise ValueError(f"unknown corruption {name!r}; expected one of {', '.join(CORRUPTIONS)}")
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) \
            or severity not in SEVERITIES:
        raise ValueError(f"severity must be an integer in 1..5, got {severity!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) \
            or not 0 <= seed < 2 ** 32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    x = _check_image(image_rgb_uint8)
    if name == "impulse_noise":
        out = _impulse_noise(x, int(severity), np.random.default_rng(int(seed)))
    else:
        out = _FUNCTIONS[name](x, int(severity), np.random.RandomState(int(seed)))
    # the package ends with np.uint8(...): truncation of values already clipped to [0, 255]
    return np.ascontiguousarray(np.uint8(out))
