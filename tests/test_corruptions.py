"""benchmark.data.corruptions against the imagecorruptions package itself.

The package (1.1.2) cannot be imported on today's stack; the fixture below mends its three
breakages here in the test, independently of the product code: a stand-in `pkg_resources` with
`resource_filename`, skimage's `gaussian(multichannel=True)` mapped to `channel_axis=-1`, and
`np.float_` restored. Then `numpy.random.seed(k); package.corrupt(...)` must equal our
`corrupt(..., seed=k)` pixel for pixel.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import sys
import types
import warnings

import numpy as np
import pytest

from benchmark.data import _corruption_kernels as kernels
from benchmark.data.corruptions import CORRUPTIONS, SEVERITIES, corrupt, frost_dir


@pytest.fixture(scope="module")
def package():
    spec = importlib.util.find_spec("imagecorruptions")
    if spec is None:
        pytest.skip("imagecorruptions is not installed")
    package_dir = os.path.dirname(spec.origin)
    fake_pkg_resources = types.ModuleType("pkg_resources")
    fake_pkg_resources.resource_filename = lambda module, rel: os.path.join(package_dir, rel)
    import skimage.filters

    original_gaussian = skimage.filters.gaussian

    @functools.wraps(original_gaussian)
    def gaussian(image, sigma=1, multichannel=None, **kwargs):
        if multichannel:
            kwargs["channel_axis"] = -1
        return original_gaussian(image, sigma=sigma, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "pkg_resources", fake_pkg_resources)
        mp.setattr(skimage.filters, "gaussian", gaussian)
        if not hasattr(np, "float_"):
            mp.setattr(np, "float_", np.float64, raising=False)
        for name in ("imagecorruptions", "imagecorruptions.corruptions"):
            mp.delitem(sys.modules, name, raising=False)
        with warnings.catch_warnings():  # its scipy.ndimage.interpolation import is deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            import imagecorruptions

        mp.setattr(skimage.filters, "gaussian", original_gaussian)  # only the package keeps it
        yield imagecorruptions
        for name in ("imagecorruptions", "imagecorruptions.corruptions"):
            sys.modules.pop(name, None)


def _test_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Blocky colours, a gradient, grey and saturated patches: every HSV branch, edges, flats."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(height // 8 + 1, width // 8 + 1, 3))
    img = np.kron(blocks, np.ones((8, 8, 1)))[:height, :width]
    img = 0.7 * img + 0.3 * np.linspace(0, 255, width)[None, :, None]
    img += rng.normal(0, 6, size=img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    img[: height // 4, : width // 4] = rng.integers(0, 256, size=(1, 1, 1))  # grey: delta == 0
    img[-4:, -4:] = (255, 0, 0)
    img[-4:, :4] = (0, 0, 0)
    return img


IMAGES = {"64x96": _test_image(64, 96), "45x77": _test_image(45, 77, seed=1)}


@pytest.mark.parametrize("shape", sorted(IMAGES))
@pytest.mark.parametrize("name", [c for c in CORRUPTIONS if c != "impulse_noise"])
def test_equals_package(package, name, shape):
    image = IMAGES[shape]
    for severity in SEVERITIES:
        np.random.seed(1234 + severity)
        expected = package.corrupt(image, corruption_name=name, severity=severity)
        ours = corrupt(image, name, severity, seed=1234 + severity)
        assert ours.dtype == np.uint8 and ours.shape == image.shape
        np.testing.assert_array_equal(ours, expected, err_msg=f"{name} severity {severity}")


def test_grayscale_input_equals_package(package):
    gray = IMAGES["64x96"][..., 1].copy()
    for name in ("motion_blur", "glass_blur", "fog", "frost"):
        np.random.seed(5)
        expected = package.corrupt(gray, corruption_name=name, severity=3)
        np.testing.assert_array_equal(corrupt(gray, name, 3, seed=5), expected)


def test_impulse_noise_equals_package_given_the_same_generator(package, monkeypatch):
    """The package draws impulse noise from an unseeded skimage generator; hand it ours."""
    import skimage.util

    original = skimage.util.random_noise
    monkeypatch.setattr(skimage.util, "random_noise",
                        lambda image, **kw: original(image, rng=np.random.default_rng(77), **kw))
    image = IMAGES["64x96"]
    for severity in SEVERITIES:
        expected = package.corrupt(image, corruption_name="impulse_noise", severity=severity)
        np.testing.assert_array_equal(corrupt(image, "impulse_noise", severity, seed=77), expected)


@pytest.mark.parametrize("severity, amount", [(1, 0.03), (5, 0.27)])
def test_impulse_noise_statistics(severity, amount):
    image = np.full((128, 128, 3), 128, dtype=np.uint8)  # never 0 or 255 before the noise
    out = corrupt(image, "impulse_noise", severity, seed=3)
    salt, pepper = (out == 255).mean(), (out == 0).mean()
    assert np.all((out == 128) | (out == 0) | (out == 255))
    assert abs((salt + pepper) - amount) < 0.01  # binomial sd at n = 49152 is < 0.002
    assert abs(salt / (salt + pepper) - 0.5) < 0.05


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_deterministic_per_seed_and_leaves_input_and_global_rng_alone(name):
    image = IMAGES["64x96"].copy()
    image.setflags(write=False)  # any in-place write to the caller's array raises
    np.random.seed(99)
    state = np.random.get_state()
    first = corrupt(image, name, 4, seed=11)
    second = corrupt(image, name, 4, seed=11)
    after = np.random.get_state()
    np.testing.assert_array_equal(first, second)
    assert after[0] == state[0] and np.array_equal(after[1], state[1]) and after[2:] == state[2:]
    deterministic = {"defocus_blur", "gaussian_blur", "brightness", "contrast", "saturate",
                     "jpeg_compression"}
    if name not in deterministic:
        assert not np.array_equal(first, corrupt(image, name, 4, seed=12))


@pytest.mark.parametrize("height, width, max_delta, iterations", [
    (20, 23, 1, 2), (17, 30, 2, 3), (24, 11, 4, 2), (12, 9, 4, 2), (12, 8, 4, 1), (6, 40, 3, 2)])
def test_glass_shuffle_equals_its_reference_loop(height, width, max_delta, iterations):
    x = np.random.default_rng(height * width).integers(0, 256, size=(height, width, 3),
                                                      dtype=np.uint8)
    expected = kernels.glass_shuffle_reference(x, max_delta, iterations, np.random.RandomState(8))
    ours = kernels.glass_shuffle(x, max_delta, iterations, np.random.RandomState(8))
    np.testing.assert_array_equal(ours, expected)


@pytest.mark.parametrize("shape", [(20, 30, 3), (50, 35), (9, 70)])
@pytest.mark.parametrize("angle", [-135.0, -60.5, 0.0, 12.3, 45.0, 90.0])
def test_motion_blur_kernel_equals_package(package, shape, angle):
    """Exact float64 equality, including the package's early stop when a shift leaves the image."""
    rng = np.random.default_rng(len(shape))
    x = rng.integers(0, 256, size=shape).astype(np.uint8) if len(shape) == 3 else rng.random(shape)
    expected = package.corruptions._motion_blur(x, radius=15, sigma=5, angle=angle)
    np.testing.assert_array_equal(kernels.motion_blur(x, 15, 5, angle), expected)


def test_frost_images_found():
    assert len(list(frost_dir().glob("frost*"))) == 6


@pytest.mark.parametrize("image, name, severity, seed, match", [
    (np.zeros((64, 64, 3), np.float32), "fog", 1, 0, "uint8"),
    (np.zeros((64, 64, 4), np.uint8), "fog", 1, 0, "shape"),
    (np.zeros((16, 64, 3), np.uint8), "fog", 1, 0, "at least 32"),
    ([[0]], "fog", 1, 0, "numpy array"),
    (np.zeros((64, 64, 3), np.uint8), "zoom_blur", 1, 0, "unknown corruption"),
    (np.zeros((64, 64, 3), np.uint8), "fog", 0, 0, "severity"),
    (np.zeros((64, 64, 3), np.uint8), "fog", 2.0, 0, "severity"),
    (np.zeros((64, 64, 3), np.uint8), "fog", 1, -1, "seed"),
    (np.zeros((64, 64, 3), np.uint8), "fog", 1, 2 ** 32, "seed"),
])
def test_bad_input_is_a_clear_value_error(image, name, severity, seed, match):
    with pytest.raises(ValueError, match=match):
        corrupt(image, name, severity, seed)


@pytest.mark.parametrize("shape, factor", [((13, 24), 2.5), ((20, 33), 4.5), ((11, 17), 3),
                                           ((512, 20), 3)])  # 512 * 3: a row lands past the edge
def test_zoom_kernel_equals_scipy(shape, factor):
    from scipy.ndimage import zoom

    x = np.random.default_rng(shape[0]).normal(0.5, 0.3, size=shape)
    expected = zoom(x[..., None], (factor, factor, 1), order=1)[..., 0]
    np.testing.assert_array_equal(kernels.zoom_linear(x, factor), expected)


@pytest.mark.parametrize("mapsize, decay, rows, cols", [(2, 2, 2, 1), (256, 1.4, 256, 256),
                                                        (1024, 1.7, 513, 1000)])
def test_plasma_fractal_equals_package(package, mapsize, decay, rows, cols):
    """Same draws and same bits as the package's whole map, cropped (fog at full size: 2048)."""
    np.random.seed(mapsize)
    expected = package.corruptions.plasma_fractal(mapsize=mapsize, wibbledecay=decay)
    rng = np.random.RandomState(mapsize)
    np.testing.assert_array_equal(kernels.plasma_fractal(mapsize, decay, rng, rows, cols),
                                  expected[:rows, :cols])
    assert rng.randint(2 ** 30) == np.random.randint(2 ** 30)  # the same number of draws


@pytest.mark.parametrize("name", ["snow", "fog", "motion_blur", "spatter", "gaussian_noise",
                                  "shot_noise", "speckle_noise", "contrast", "gaussian_blur",
                                  "defocus_blur"])
def test_block_paths_equal_package_on_a_larger_frame(package, name):
    """Frames taller than one row block (and a width that is no multiple of a SIMD vector).

    (Glass blur's package loop is too slow for this size; its shuffle is tested against the loop.)
    """
    image = _test_image(150, 1203, seed=2)
    for severity in (1, 5):
        np.random.seed(40 + severity)
        expected = package.corrupt(image, corruption_name=name, severity=severity)
        np.testing.assert_array_equal(corrupt(image, name, severity, seed=40 + severity), expected,
                                      err_msg=f"{name} severity {severity}")
