"""Segmentation transforms (numpy, RGB uint8 images, uint8 train-id labels), following mmseg's pipeline.

Every random transform takes an explicit `numpy.random.Generator`: the dataset derives one per item from
(seed, index), so augmentation never touches global RNG state and a resumed run sees the same crops.

Training (design §3, mmseg's cityscapes pipeline): `random_rescale` (ratio 0.5-2.0 of a base scale, keeping
the aspect ratio), `random_crop` with `cat_max_ratio` 0.75, `random_flip`, `photometric_distortion`, then
`normalize` and `pad_to` the crop size. Evaluation: `resize_short_side` on the image only.
"""
from __future__ import annotations

import cv2
import numpy as np

from benchmark.data.classes import IGNORE_INDEX

IMAGENET_MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
IMAGENET_STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)


def _resize(image: np.ndarray, height: int, width: int, nearest: bool = False) -> np.ndarray:
    if image.shape[:2] == (height, width):
        return image
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interp)


def rescale_size(height: int, width: int, scale: tuple[int, int]) -> tuple[int, int]:
    """mmcv's keep-ratio rescale: fit (h, w) inside `scale` = (long edge, short edge) limits."""
    long_edge, short_edge = max(scale), min(scale)
    factor = min(long_edge / max(height, width), short_edge / min(height, width))
    return int(height * factor + 0.5), int(width * factor + 0.5)


def random_rescale(image: np.ndarray, label: np.ndarray, rng: np.random.Generator,
                   base_scale: tuple[int, int] = (1024, 2048),
                   ratio_range: tuple[float, float] = (0.5, 2.0)) -> tuple[np.ndarray, np.ndarray]:
    """Resize (keeping the aspect ratio) to fit `base_scale` (height, width) times a ratio drawn uniformly from
    `ratio_range`."""
    ratio = rng.uniform(*ratio_range)
    target = (int(base_scale[0] * ratio), int(base_scale[1] * ratio))
    h, w = rescale_size(*image.shape[:2], target)
    return _resize(image, h, w), _resize(label, h, w, nearest=True)


def random_crop(image: np.ndarray, label: np.ndarray, rng: np.random.Generator, crop_size: tuple[int, int],
                cat_max_ratio: float = 0.75, tries: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """mmseg's RandomCrop: up to `tries` crops until no single class covers >= cat_max_ratio of the labelled
    pixels (ignore excluded; crops with a single class are retried too); otherwise the last one is kept."""
    ch, cw = crop_size
    h, w = label.shape
    max_y, max_x = max(h - ch, 0), max(w - cw, 0)

    def bbox() -> tuple[int, int, int, int]:
        y = int(rng.integers(0, max_y + 1))
        x = int(rng.integers(0, max_x + 1))
        return y, min(y + ch, h), x, min(x + cw, w)

    y0, y1, x0, x1 = bbox()
    if cat_max_ratio < 1.0:
        for _ in range(tries):
            counts = np.bincount(label[y0:y1, x0:x1].ravel(), minlength=256)
            counts[IGNORE_INDEX] = 0
            counts = counts[counts > 0]
            if len(counts) > 1 and counts.max() / counts.sum() < cat_max_ratio:
                break
            y0, y1, x0, x1 = bbox()
    return image[y0:y1, x0:x1], label[y0:y1, x0:x1]


def random_flip(image: np.ndarray, label: np.ndarray, rng: np.random.Generator,
                prob: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    if rng.random() < prob:
        return image[:, ::-1], label[:, ::-1]
    return image, label


def _convert(img: np.ndarray, alpha: float = 1.0, beta: float = 0.0) -> np.ndarray:
    return np.clip(img.astype(np.float32) * alpha + beta, 0, 255).astype(np.uint8)


def photometric_distortion(image: np.ndarray, rng: np.random.Generator, brightness_delta: int = 32,
                           contrast_range: tuple[float, float] = (0.5, 1.5),
                           saturation_range: tuple[float, float] = (0.5, 1.5),
                           hue_delta: int = 18) -> np.ndarray:
    """mmseg's PhotoMetricDistortion: brightness, contrast (first or last), saturation, hue, each with
    probability 1/2, rounding to uint8 after each step as mmseg does."""
    img = np.ascontiguousarray(image)
    if rng.integers(2):
        img = _convert(img, beta=rng.uniform(-brightness_delta, brightness_delta))
    contrast_first = bool(rng.integers(2))

    def contrast(x: np.ndarray) -> np.ndarray:
        return _convert(x, alpha=rng.uniform(*contrast_range)) if rng.integers(2) else x

    if contrast_first:
        img = contrast(img)
    if rng.integers(2):
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
        hsv[:, :, 1] = _convert(hsv[:, :, 1], alpha=rng.uniform(*saturation_range))
        img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if rng.integers(2):
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
        shift = int(rng.integers(-hue_delta, hue_delta))
        hsv[:, :, 0] = ((hsv[:, :, 0].astype(np.int16) + shift) % 180).astype(np.uint8)  # OpenCV hue: 0..179
        img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if not contrast_first:
        img = contrast(img)
    return img


def resize_short_side(image: np.ndarray, short_side: int) -> np.ndarray:
    """Resize so the shorter edge is `short_side`, keeping the aspect ratio (bilinear)."""
    h, w = image.shape[:2]
    factor = short_side / min(h, w)
    return _resize(image, int(round(h * factor)), int(round(w * factor)))


def normalize(image: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> float32 (3, H, W) with ImageNet mean / std."""
    out = (image.astype(np.float32) - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(out.transpose(2, 0, 1))


def pad_to(image_chw: np.ndarray, label: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pad bottom / right to `size` (image with 0 after normalisation, label with ignore), as mmseg's Pad."""
    h, w = label.shape
    ph, pw = max(size[0] - h, 0), max(size[1] - w, 0)
    if ph == 0 and pw == 0:
        return image_chw, label
    image_chw = np.pad(image_chw, ((0, 0), (0, ph), (0, pw)), constant_values=0.0)
    label = np.pad(label, ((0, ph), (0, pw)), constant_values=IGNORE_INDEX)
    return image_chw, label
