"""PyTorch datasets over the five DGSS datasets (and Cityscapes-C) in their release layouts.

`build_dataset(...)` is the one entry point (contract in docs/ARCHITECTURE.md). Items are dicts
`{"image": float32 (3, H, W) ImageNet-normalised, "label": int64 (H, W) train ids / 255, "name": str}`.

Determinism: a training item is a pure function of (seed, key); no global RNG is read or advanced. A key
is either an integer index, any non-negative one (file = index % len(dataset), augmentation generator
seeded from (seed, index): an engine wanting fresh augmentations every epoch asks for
`epoch * len(dataset) + i`), or a pair `(index, item_seed)` (file = index, generator seeded from
(seed, index, item_seed)) for samplers that draw a seed per slot. A resumed run that asks for the same keys
gets the same crops.

Labels come from the train-id cache written by `python -m benchmark.data.prepare` when it is present and
newer than the original; otherwise the original is converted on the fly by the same code (benchmark.data.labels).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from benchmark.data import transforms as T
from benchmark.data.labels import label_spec
from benchmark.data.layouts import (CITYSCAPES_C_DIR, LayoutError, Sample, cache_path, dataset_dir, image_size,
                                    list_samples, read_image, read_raw_label)



def load_train_ids(root: str | Path, dataset_id: str, label: Path, use_cache: bool = True) -> np.ndarray:
    """uint8 train ids (H, W) of one label file: from prepare's cache when fresh, else converted now."""
    if use_cache:
        cached = cache_path(root, dataset_id, label)
        try:
            fresh = cached.stat().st_mtime_ns >= Path(label).stat().st_mtime_ns
        except FileNotFoundError:
            fresh = False
        if fresh:
            # cache files are 8-bit train-id PNGs, the encoding BDD uses: validate them the same way
            return label_spec("bdd").to_train_ids(read_raw_label("bdd", cached), cached)
    return label_spec(dataset_id).to_train_ids(read_raw_label(dataset_id, label), label)


def item_generator(seed: int, *key: int) -> np.random.Generator:
    """The augmentation generator of one training item (independent streams per (seed, key))."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), *(int(k) for k in key)]))


class SegmentationDataset(Dataset):
    """Image / label pairs of one split, with the training or the evaluation pipeline."""

    def __init__(self, dataset_id: str, root: str | Path, samples: list[Sample], *, train: bool,
                 crop_size: tuple[int, int] | None = None, base_scale: tuple[int, int] = (1024, 2048),
                 ratio_range: tuple[float, float] = (0.5, 2.0), cat_max_ratio: float = 0.75,
                 flip_prob: float = 0.5, photometric: bool = True, eval_short_side: int | None = None,
                 seed: int = 0, use_cache: bool = True):
        if train and crop_size is None:
            raise ValueError("training datasets need crop_size=(height, width)")
        if not samples:
            raise LayoutError(f"{dataset_id}: no samples under {dataset_dir(root, dataset_id)}")
        self.dataset_id = dataset_id
        self.root = Path(root)
        self.samples = samples
        self.train = train
        self.crop_size = tuple(crop_size) if crop_size is not None else None
        self.base_scale = tuple(base_scale)
        self.ratio_range = tuple(ratio_range)
        self.cat_max_ratio = cat_max_ratio
        self.flip_prob = flip_prob
        self.photometric = photometric
        self.eval_short_side = eval_short_side
        self.seed = seed
        self.use_cache = use_cache

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(RGB uint8 image, uint8 train-id label) of sample i, checked to have the same size."""
        s = self.samples[i]
        image = read_image(s.image)
        label = load_train_ids(self.root, self.dataset_id, s.label, self.use_cache)
        if image.shape[:2] != label.shape:
            raise ValueError(f"size mismatch: image {s.image} is {image.shape[1]}x{image.shape[0]} but label "
                             f"{s.label} is {label.shape[1]}x{label.shape[0]} (width x height)")
        return image, label

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        if isinstance(key, (tuple, list)):
            index, item_seed = (int(k) for k in key)
            if not 0 <= index < len(self.samples):
                raise IndexError(f"index {index} out of range for {len(self.samples)} samples")
            i, stream = index, (index, item_seed)
        else:
            index = int(key)
            if index < 0:
                raise IndexError(f"negative index {index}")
            i, stream = index % len(self.samples), (index,)
        image, label = self.load(i)
        if self.train:
            rng = item_generator(self.seed, *stream)
            image, label = T.random_rescale(image, label, rng, self.base_scale, self.ratio_range)
            image, label = T.random_crop(image, label, rng, self.crop_size, self.cat_max_ratio)
            image, label = T.random_flip(image, label, rng, self.flip_prob)
            if self.photometric:
                image = T.photometric_distortion(image, rng)
            chw, label = T.pad_to(T.normalize(image), np.ascontiguousarray(label), self.crop_size)
        else:
            if self.eval_short_side is not None:
                image = T.resize_short_side(image, self.eval_short_side)
            chw = T.normalize(image)
        return {"image": torch.from_numpy(chw), "label": torch.from_numpy(label.astype(np.int64)),
                "name": self.samples[i].name}


def cityscapes_c_samples(root: str | Path, corruption: str, severity: int) -> list[Sample]:
    """Cityscapes-C images `<root>/cityscapes_c/<corruption>/<severity>/<city>/<stem>_leftImg8bit.png`
    paired with the Cityscapes val labels; every val image must have its corrupted twin."""
    base = list_samples(root, "cityscapes", "val")
    folder = Path(root) / CITYSCAPES_C_DIR / corruption / str(severity)
    if not folder.is_dir():
        raise LayoutError(f"missing folder {folder} (Cityscapes-C {corruption} severity {severity}); create it "
                          f"with python -m benchmark.data.cityscapes_c --root {root}")
    out, missing = [], []
    for s in base:
        img = folder / s.image.parent.name / s.image.name
        (out if img.is_file() else missing).append(Sample(s.name, img, s.label))
    if missing:
        raise LayoutError(f"{folder}: {len(missing)} of {len(base)} Cityscapes val images have no corrupted "
                          f"version, e.g. {missing[0].image}")
    _warn_if_stale(root, base)
    return out


def _warn_if_stale(root: str | Path, val: list[Sample]) -> None:
    """Cheap staleness hint: val images newer than the Cityscapes-C manifest (e.g. regenerated synthetic
    data) were probably not the sources of the corrupted images. `benchmark.data.check` verifies by hash."""
    manifest = Path(root) / CITYSCAPES_C_DIR / "manifest.json"
    if not manifest.is_file():
        return
    made = manifest.stat().st_mtime_ns
    newer = [s.image for s in val if s.image.stat().st_mtime_ns > made]
    if newer:
        warnings.warn(f"{len(newer)} Cityscapes val images (e.g. {newer[0]}) are newer than {manifest}: Cityscapes-C "
                      f"may be stale; rerun python -m benchmark.data.cityscapes_c --root {root} (it redoes "
                      "outputs whose source changed)", RuntimeWarning, stacklevel=3)


def check_sizes(samples: list[Sample]) -> None:
    """Compare image and label sizes from the file headers (cheap), so a mismatched pair stops the run
    before training starts rather than at the iteration that first draws it."""
    bad = []
    for s in samples:
        img, lbl = image_size(s.image), image_size(s.label)
        if img != lbl:
            bad.append(f"{s.image} is {img[1]}x{img[0]}, {s.label} is {lbl[1]}x{lbl[0]}")
    if bad:
        shown = "; ".join(bad[:5]) + (f"; ... {len(bad) - 5} more" if len(bad) > 5 else "")
        raise ValueError(f"{len(bad)} image/label pairs differ in size (width x height): {shown}. Remove them from "
                         "the split (see datasets/README.md) or fix the files")


def build_dataset(dataset_id: str, split: str, root: str | Path, *, train: bool,
                  crop_size: tuple[int, int] | None = None, eval_short_side: int | None = None,
                  corruption: str | None = None, severity: int = 5, base_scale: tuple[int, int] = (1024, 2048),
                  ratio_range: tuple[float, float] = (0.5, 2.0), cat_max_ratio: float = 0.75,
                  flip_prob: float = 0.5, photometric: bool = True, seed: int = 0,
                  use_cache: bool = True) -> SegmentationDataset:
    """A dataset of `<root>/<dataset_id>/` split `split` (train: augmented crops; eval: whole images resized
    to `eval_short_side`, labels at original resolution). `corruption` selects Cityscapes-C images (only for
    cityscapes val). `base_scale` is (height, width) of the random rescale (1024x2048 in the paper), like every size here."""
    if corruption is not None:
        if dataset_id != "cityscapes" or split != "val" or train:
            raise ValueError("corruption= is only valid for evaluation on cityscapes val (Cityscapes-C), got "
                             f"dataset {dataset_id!r} split {split!r} train={train}")
        samples = cityscapes_c_samples(root, corruption, severity)
    else:
        samples = list_samples(root, dataset_id, split)
    check_sizes(samples)
    return SegmentationDataset(dataset_id, root, samples, train=train, crop_size=crop_size, base_scale=base_scale,
                               ratio_range=ratio_range, cat_max_ratio=cat_max_ratio, flip_prob=flip_prob,
                               photometric=photometric, eval_short_side=eval_short_side, seed=seed,
                               use_cache=use_cache)
