"""Training / evaluation transforms and the determinism of dataset items."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.data import transforms as T
from benchmark.data.datasets import SegmentationDataset
from benchmark.data.layouts import Sample


def _cat_ratio_ok(label: np.ndarray, ratio: float) -> bool:
    counts = np.bincount(label.ravel(), minlength=256)[:255]
    counts = counts[counts > 0]
    return len(counts) > 1 and counts.max() / counts.sum() < ratio


def test_random_crop_retries_until_no_class_dominates():
    # 90% of the columns are road: a random 20x20 crop is almost always road only.
    label = np.zeros((100, 100), np.uint8)
    label[:, 90:] = 13
    image = np.zeros((100, 100, 3), np.uint8)
    with_rule = without_rule = 0
    for seed in range(200):
        _, crop = T.random_crop(image, label, np.random.default_rng(seed), (20, 20), cat_max_ratio=0.75)
        with_rule += _cat_ratio_ok(crop, 0.75)
        _, crop = T.random_crop(image, label, np.random.default_rng(seed), (20, 20), cat_max_ratio=1.0)
        without_rule += _cat_ratio_ok(crop, 0.75)
    # one try succeeds with p = 5/81; ten tries with about 0.47
    assert without_rule / 200 < 0.15
    assert 0.3 < with_rule / 200 < 0.65


def test_random_crop_ignores_ignore_pixels_and_handles_small_images():
    label = np.full((10, 10), 255, np.uint8)
    label[:, :3] = 1
    label[:, 3:5] = 2
    image = np.zeros((10, 10, 3), np.uint8)
    img, crop = T.random_crop(image, label, np.random.default_rng(0), (10, 10))
    assert crop.shape == (10, 10) and img.shape == (10, 10, 3)  # whole image: 1 vs 2 is 60% < 75%
    img, crop = T.random_crop(image, label, np.random.default_rng(0), (16, 32))
    assert crop.shape == (10, 10)  # crop larger than the image: the image, padded later


def test_random_rescale_keeps_aspect_within_ratio_range():
    image = np.zeros((100, 200, 3), np.uint8)
    label = np.zeros((100, 200), np.uint8)
    sizes = set()
    for seed in range(30):
        img, lbl = T.random_rescale(image, label, np.random.default_rng(seed), base_scale=(128, 256),
                                    ratio_range=(0.5, 2.0))
        assert img.shape[:2] == lbl.shape
        h, w = lbl.shape
        assert abs(w / h - 2.0) < 0.05 and 64 - 1 <= h <= 256 + 1
        sizes.add(h)
    assert len(sizes) > 10
    assert T.rescale_size(1024, 2048, (2048, 1024)) == (1024, 2048)
    assert T.rescale_size(720, 1280, (2048, 1024)) == (1024, 1820)  # limited by the short edge


def test_photometric_distortion_is_seeded_and_keeps_shape():
    image = np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    a = T.photometric_distortion(image, np.random.default_rng(5))
    b = T.photometric_distortion(image, np.random.default_rng(5))
    assert a.dtype == np.uint8 and a.shape == image.shape
    np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(T.photometric_distortion(image, np.random.default_rng(s)), image) for s in range(5))


def test_resize_short_side_and_pad():
    assert T.resize_short_side(np.zeros((50, 100, 3), np.uint8), 32).shape == (32, 64, 3)
    assert T.resize_short_side(np.zeros((120, 90, 3), np.uint8), 30).shape == (40, 30, 3)
    img, lbl = T.pad_to(np.ones((3, 4, 5), np.float32), np.zeros((4, 5), np.uint8), (6, 8))
    assert img.shape == (3, 6, 8) and lbl.shape == (6, 8)
    assert (img[:, 4:, :] == 0).all() and (lbl[4:, :] == 255).all() and (lbl[:, 5:] == 255).all()


class _MemoryDataset(SegmentationDataset):
    """The real pipeline over in-memory arrays (no files)."""

    def __init__(self, images, labels, **kwargs):
        samples = [Sample(f"s{i}", None, None) for i in range(len(images))]
        super().__init__("cityscapes", ".", samples, **kwargs)
        self._arrays = list(zip(images, labels))

    def load(self, i):
        return self._arrays[i]


def _memory_dataset(**kwargs):
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (40, 60, 3), dtype=np.uint8) for _ in range(3)]
    labels = [rng.integers(0, 19, (40, 60), dtype=np.uint8) for _ in range(3)]
    return _MemoryDataset(images, labels, **kwargs)


def test_train_items_are_pure_functions_of_seed_and_key():
    ds = _memory_dataset(train=True, crop_size=(16, 24), base_scale=(40, 60), seed=3)
    np.random.seed(123)
    torch.manual_seed(123)
    state = np.random.get_state()[1].copy()
    a, b = ds[1], ds[1]
    assert np.array_equal(np.random.get_state()[1], state)   # global RNG neither read nor advanced
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    assert a["image"].shape == (3, 16, 24) and a["label"].shape == (16, 24) and a["label"].dtype == torch.int64
    # the same file at another epoch (index + len) gets another augmentation; so does another item seed
    c = ds[1 + len(ds)]
    assert c["name"] == a["name"] and not torch.equal(c["image"], a["image"])
    d, e = ds[(1, 77)], ds[(1, 78)]
    assert d["name"] == a["name"] and torch.equal(d["image"], ds[(1, 77)]["image"])
    assert not torch.equal(d["image"], e["image"])
    other_seed = _memory_dataset(train=True, crop_size=(16, 24), base_scale=(40, 60), seed=4)[1]
    assert not torch.equal(other_seed["image"], a["image"])
    with pytest.raises(IndexError):
        ds[(5, 0)]


def test_eval_items_keep_label_at_original_resolution():
    ds = _memory_dataset(train=False, eval_short_side=20)
    item = ds[0]
    assert item["image"].shape == (3, 20, 30)
    assert item["label"].shape == (40, 60)
    np.testing.assert_array_equal(item["label"].numpy(), ds._arrays[0][1])
    assert torch.equal(ds[0]["image"], item["image"])
    # normalisation is ImageNet mean / std on RGB
    raw = ds._arrays[0][0]
    full = _memory_dataset(train=False)[0]["image"].numpy()
    np.testing.assert_allclose(full[:, 3, 5], (raw[3, 5] - T.IMAGENET_MEAN) / T.IMAGENET_STD, rtol=1e-5)


def test_training_requires_a_crop_size():
    with pytest.raises(ValueError, match="crop_size"):
        _memory_dataset(train=True)
