"""Write the five synthetic stand-in domains, each in its real dataset's release layout and label encoding.

    python -m benchmark.data.synthetic --out datasets/synthetic [--images 150 --val-images 30
                                       --size 160 320 --seed 0 --workers 2]

Scenes come from benchmark.data.scenes (one street grammar, five domain styles); this module only encodes
them as each release does (benchmark/data/layouts.py, datasets/README.md):
cityscapes (PNG + gtFine labelIds), bdd (JPEG + 10k sem_seg train-id masks), mapillary (JPEG at mixed sizes +
v1.2 palette labels with its 66 ids), gtav (PNG + palette labels with Cityscapes ids, split lists) and synthia
(PNG + 16-bit 3-channel GT/LABELS with the class id in the first channel, split lists). Nothing reads them
except the real loaders.

Byte-identical for a seed: each image's generator is seeded from (seed, domain, split, index) and the PNG /
JPEG encoders are deterministic; the worker count does not change the output. Every file is written
atomically; `<out>/synthetic.json` (written last) records the settings and a fingerprint of the generating
code, and a rerun with the same settings and code over complete output does nothing. After writing, every val split is read back through the real converters
and must contain every class its real dataset has, or the command fails naming the missing classes.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import shutil
import string
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from benchmark.atomic import atomic_path, atomic_write_json, atomic_write_text
from benchmark.data.classes import CLASS_NAMES
from benchmark.data.labels import DATASET_IDS, label_spec
from benchmark.data.layouts import list_samples, split_list_name
from benchmark.errors import guarded

# Defaults sized for the smoke preset (one place: the CLI, run_all.sh and the tests use these).
DEFAULT_TRAIN_IMAGES = 150
DEFAULT_VAL_IMAGES = 30
DEFAULT_SIZE = (160, 320)  # (height, width)
DEFAULT_SEED = 0
MANIFEST_NAME = "synthetic.json"
IN_PROGRESS_NAME = ".synthetic-in-progress"  # marks a folder this writer owns while the manifest is absent
COVERAGE_ATTEMPTS = 4  # alternative renders per val image when the split misses a class
FORMAT_VERSION = 1

SPLIT_INDEX = {"train": 0, "val": 1}
CITYSCAPES_CITIES = {"train": ("aachen", "bochum", "bremen", "cologne", "darmstadt", "hamburg"),
                     "val": ("frankfurt", "lindau", "munster")}
MAPILLARY_ASPECTS = (4 / 3, 16 / 9, 2.0)
MAPILLARY_SCALES = (0.8, 1.0, 1.25)
_KEY_ALPHABET = string.ascii_letters + string.digits + "-_"


def render_scene(domain: str, rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """benchmark.data.scenes.render_scene, imported lazily so the CLI's --help works without it."""
    from benchmark.data import scenes

    return scenes.render_scene(domain, rng, height, width)


@dataclass(frozen=True)
class Settings:
    seed: int
    train_images: int
    val_images: int
    height: int
    width: int
    format_version: int = FORMAT_VERSION

    def count(self, split: str) -> int:
        return self.train_images if split == "train" else self.val_images


def _rng(*parts: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(p) for p in parts]))


def _domain_index(dataset_id: str) -> int:
    return DATASET_IDS.index(dataset_id)


# ----------------------------------------------------------------------------------------- file names
def _flat_numbering(s: Settings, dataset_id: str) -> dict[str, list[int]]:
    """GTAV / SYNTHIA: one numbered folder; the val split is a random subset, as in RobustNet's lists."""
    total = s.train_images + s.val_images
    order = _rng(s.seed, _domain_index(dataset_id), 99).permutation(total)
    val = np.sort(order[: s.val_images])
    train = np.sort(order[s.val_images:])
    start = 1 if dataset_id == "gtav" else 0  # GTAV counts from 00001, SYNTHIA from 0000000
    return {"train": [int(i) + start for i in train], "val": [int(i) + start for i in val]}


def _relative_paths(s: Settings, dataset_id: str, split: str, index: int,
                    numbering: dict[str, list[int]] | None) -> tuple[str, str]:
    """(image path, label path) relative to <out>/<dataset id>/ for image `index` of `split`."""
    names = _rng(s.seed, _domain_index(dataset_id), SPLIT_INDEX[split], index, 1)
    if dataset_id == "cityscapes":
        cities = CITYSCAPES_CITIES[split]
        city = cities[index % len(cities)]
        stem = f"{city}_{index // len(cities):06d}_000019"
        return (f"leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png", f"gtFine/{split}/{city}/{stem}_gtFine_labelIds.png")
    if dataset_id == "bdd":
        stem = f"{int(names.integers(2**32)):08x}-{int(names.integers(2**32)):08x}"
        return f"images/10k/{split}/{stem}.jpg", f"labels/sem_seg/masks/{split}/{stem}.png"
    if dataset_id == "mapillary":
        key = "".join(names.choice(list(_KEY_ALPHABET), size=22))
        folder = {"train": "training", "val": "validation"}[split]
        return f"{folder}/images/{key}.jpg", f"{folder}/labels/{key}.png"
    number = numbering[split][index]
    if dataset_id == "gtav":
        return f"images/{number:05d}.png", f"labels/{number:05d}.png"
    return f"RGB/{number:07d}.png", f"GT/LABELS/{number:07d}.png"


def _image_size(s: Settings, dataset_id: str, rng: np.random.Generator) -> tuple[int, int]:
    if dataset_id != "mapillary":
        return s.height, s.width
    # Vistas images come from many cameras: mixed aspect ratios and resolutions.
    h = int(round(s.height * MAPILLARY_SCALES[int(rng.integers(len(MAPILLARY_SCALES)))]))
    w = int(round(h * MAPILLARY_ASPECTS[int(rng.integers(len(MAPILLARY_ASPECTS)))]))
    return h, w


# ----------------------------------------------------------------------------------------- encoders
@functools.lru_cache(maxsize=None)
def _cityscapes_palette() -> list[int]:
    from cityscapesscripts.helpers.labels import labels as cs_labels

    palette = [0] * 768
    for label in cs_labels:
        if 0 <= label.id < 256:
            palette[3 * label.id: 3 * label.id + 3] = list(label.color)
    return palette


@functools.lru_cache(maxsize=None)
def _mapillary_palette() -> list[int]:
    from cityscapesscripts.helpers.labels import trainId2label

    spec = label_spec("mapillary")
    palette = [0] * 768
    for raw in range(66):
        train = spec.raw_to_train[raw]
        color = trainId2label[train].color if train != 255 else ((raw * 37) % 256, (raw * 91) % 256, (raw * 53) % 256)
        palette[3 * raw: 3 * raw + 3] = list(color)
    return palette


def _save_pil(path: Path, image: Image.Image, **kwargs) -> None:
    with atomic_path(path) as tmp:
        image.save(tmp, **kwargs)


def _save_synthia_label(path: Path, ids: np.ndarray, rng: np.random.Generator) -> None:
    """16-bit 3-channel PNG: class id in the first channel, an instance-like id in the second."""
    instance = np.where(ids > 0, rng.integers(1, 1000), 0).astype(np.uint16)
    bgr = np.stack([np.zeros_like(ids), instance, ids], axis=-1)  # cv2 writes BGR: file channel 0 = last here
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), bgr):
            raise OSError(f"cannot write {path}")


def _write_pair(dataset_id: str, image_path: Path, label_path: Path, rgb: np.ndarray, train_ids: np.ndarray,
                rng: np.random.Generator) -> None:
    raw = label_spec(dataset_id).encode(train_ids)
    if image_path.suffix == ".jpg":
        _save_pil(image_path, Image.fromarray(rgb), format="JPEG", quality=90)
    else:
        _save_pil(image_path, Image.fromarray(rgb), format="PNG")
    if dataset_id == "synthia":
        _save_synthia_label(label_path, raw, rng)
    elif dataset_id in ("gtav", "mapillary"):
        im = Image.frombytes("P", (raw.shape[1], raw.shape[0]), np.ascontiguousarray(raw).tobytes())
        im.putpalette(_cityscapes_palette() if dataset_id == "gtav" else _mapillary_palette())
        _save_pil(label_path, im, format="PNG")
    else:
        _save_pil(label_path, Image.fromarray(raw), format="PNG")


def _render(job: tuple, attempt: int = 0) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    """(rgb, train ids, generator after rendering) of one job. Attempts > 0 are the deterministic
    alternative renders used to complete a val split's class coverage."""
    _, settings_dict, dataset_id, split, index, _, _ = job
    s = Settings(**settings_dict)
    parts = [s.seed, _domain_index(dataset_id), SPLIT_INDEX[split], index] + ([1000 + attempt] if attempt else [])
    rng = _rng(*parts)
    h, w = _image_size(s, dataset_id, rng)
    try:
        rgb, train_ids = render_scene(dataset_id, rng, h, w)
    except Exception as e:  # name the image: scene bugs show up at particular seeds and sizes
        raise RuntimeError(f"render_scene({dataset_id!r}, {h}x{w}) failed for {split} image {index} "
                           f"(seed {s.seed}, attempt {attempt}): {type(e).__name__}: {e}") from e
    if rgb.shape != (h, w, 3) or rgb.dtype != np.uint8 or train_ids.shape != (h, w):
        raise ValueError(f"render_scene({dataset_id!r}) returned {rgb.shape} {rgb.dtype} / {train_ids.shape}; "
                         f"expected ({h}, {w}, 3) uint8 / ({h}, {w})")
    return rgb, train_ids.astype(np.uint8), rng


def _make_one(job: tuple, attempt: int = 0) -> None:
    """Render and write one image / label pair."""
    out, _, dataset_id, _, _, rel_image, rel_label = job
    rgb, train_ids, rng = _render(job, attempt)
    ds = Path(out) / dataset_id
    _write_pair(dataset_id, ds / rel_image, ds / rel_label, rgb, train_ids, rng)


def complete_val_coverage(out: Path, val_jobs: list[tuple], attempts: int = COVERAGE_ATTEMPTS) -> None:
    """Re-render val images (in order, up to `attempts` alternatives each) while that adds classes the
    domain's real dataset has and the split lacks. Deterministic: the same jobs give the same files."""
    if not val_jobs:
        return
    dataset_id = val_jobs[0][2]
    spec = label_spec(dataset_id)
    needed = set(spec.train_ids)
    from benchmark.data.datasets import load_train_ids

    ds = Path(out) / dataset_id
    present = [set(np.unique(load_train_ids(out, dataset_id, ds / job[6], use_cache=False)).tolist())
               for job in val_jobs]
    covered = set().union(*present) & needed
    for i, job in enumerate(val_jobs):
        if covered == needed:
            return
        others = set().union(*(p for j, p in enumerate(present) if j != i)) & needed
        for attempt in range(1, attempts + 1):
            # Render in memory first; only a candidate that adds classes replaces the files.
            _, ids, _ = _render(job, attempt)
            candidate = set(np.unique(spec.to_train_ids(spec.encode(ids))).tolist())
            if len((others | candidate) & needed) > len(covered):
                _make_one(job, attempt)
                present[i] = set(np.unique(load_train_ids(out, dataset_id, ds / job[6], use_cache=False)).tolist())
                covered = (others | present[i]) & needed
                break


# ----------------------------------------------------------------------------------------- driver
def plan(out: Path, s: Settings, domains: tuple[str, ...] = DATASET_IDS) -> list[tuple]:
    jobs = []
    for dataset_id in domains:
        numbering = _flat_numbering(s, dataset_id) if dataset_id in ("gtav", "synthia") else None
        for split in ("train", "val"):
            for index in range(s.count(split)):
                rel_image, rel_label = _relative_paths(s, dataset_id, split, index, numbering)
                jobs.append((str(out), asdict(s), dataset_id, split, index, rel_image, rel_label))
    return jobs


def _write_split_lists(out: Path, s: Settings, domains: tuple[str, ...] = DATASET_IDS) -> None:
    for dataset_id in (d for d in ("gtav", "synthia") if d in domains):
        numbering = _flat_numbering(s, dataset_id)
        width = 5 if dataset_id == "gtav" else 7
        for split, numbers in numbering.items():
            text = "".join(f"{n:0{width}d}.png\n" for n in numbers)
            path = out / dataset_id / "splits" / split_list_name(dataset_id, split)
            with atomic_path(path) as tmp:
                tmp.write_text(text)


def missing_val_classes(out: Path, dataset_id: str) -> list[str]:
    """Classes the real dataset has that no val label of `<out>/<dataset_id>` contains (read back through
    the real layout and converter)."""
    from benchmark.data.datasets import load_train_ids

    present = np.zeros(256, dtype=bool)
    for sample in list_samples(out, dataset_id, "val"):
        present[np.unique(load_train_ids(out, dataset_id, sample.label, use_cache=False))] = True
    return [CLASS_NAMES[c] for c in label_spec(dataset_id).train_ids if not present[c]]


def generator_fingerprint() -> str:
    """sha256 over the source of the scene and writer modules: output made by other code is regenerated."""
    here = Path(__file__).resolve().parent
    files = sorted(here.glob("scene*.py")) + [here / "synthetic.py", here / "labels.py"]
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()


def manifest_digest(root: str | os.PathLike) -> str | None:
    """The identity of the synthetic data under `root`: sha256 of its manifest (settings, generator
    fingerprint, counts), or None where `root` holds no synthetic output (real datasets). Job configs
    carry it, so results and checkpoints made on other synthetic data never count as done."""
    root = Path(root)
    if (root / IN_PROGRESS_NAME).exists() and not (root / MANIFEST_NAME).exists():
        raise ValueError(f"synthetic data under {root} is incomplete (generation did not finish); rerun "
                         f"python -m benchmark.data.synthetic --out {root}")
    path = root / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: unreadable synthetic manifest ({e}); regenerate with "
                         f"python -m benchmark.data.synthetic --out {root} --force") from e
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


def manifest_matches(out: Path, s: Settings, domains: tuple[str, ...] = DATASET_IDS) -> bool:
    path = out / MANIFEST_NAME
    try:
        recorded = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    if recorded.get("settings") != asdict(s) or recorded.get("generator_fingerprint") != generator_fingerprint():
        return False
    if sorted(recorded.get("counts", {})) != sorted(domains):
        return False
    return all((out / d / rel).is_file() for job in plan(out, s, domains)
               for d, rel in ((job[2], job[5]), (job[2], job[6])))


def generate(out: str | Path, settings: Settings, workers: int = 1, force: bool = False,
             domains: tuple[str, ...] = DATASET_IDS) -> dict:
    """Write the domains (default all five) under `out`; returns the manifest (also written to
    <out>/synthetic.json)."""
    out = Path(out)
    unknown = [d for d in domains if d not in DATASET_IDS]
    if unknown or not domains:
        raise ValueError(f"unknown domain(s) {', '.join(unknown) or '(none given)'}; valid: {', '.join(DATASET_IDS)}")
    domains = tuple(d for d in DATASET_IDS if d in domains)
    if not force and manifest_matches(out, settings, domains):
        return json.loads((out / MANIFEST_NAME).read_text())
    _clear_previous_output(out)
    jobs = plan(out, settings, domains)
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(_make_one, jobs, chunksize=8))
    else:
        for job in jobs:
            _make_one(job)
    _write_split_lists(out, settings, domains)
    for dataset_id in domains:
        complete_val_coverage(out, [j for j in jobs if j[2] == dataset_id and j[3] == "val"])
    problems = {d: missing_val_classes(out, d) for d in domains}
    problems = {d: m for d, m in problems.items() if m}
    if problems:
        detail = "; ".join(f"{d}: {', '.join(m)}" for d, m in problems.items())
        raise RuntimeError(f"synthetic val splits under {out} lack classes their real datasets have ({detail}); "
                           f"use more --val-images or another --seed")
    manifest = {
        "generator": "benchmark.data.synthetic",
        "settings": asdict(settings),
        "generator_fingerprint": generator_fingerprint(),
        "counts": {d: {"train": settings.train_images, "val": settings.val_images} for d in domains},
        "note": "procedurally generated stand-ins in each dataset's release layout; not real data",
    }
    atomic_write_json(out / MANIFEST_NAME, manifest)
    (out / IN_PROGRESS_NAME).unlink(missing_ok=True)
    return manifest


def _clear_previous_output(out: Path) -> None:
    """Remove an earlier synthetic output (whose file set may differ) before writing; refuse to touch
    dataset folders that this writer did not create (e.g. real data given as --out by mistake)."""
    existing = [out / d for d in DATASET_IDS if (out / d).exists()]
    ours = (out / MANIFEST_NAME).exists() or (out / IN_PROGRESS_NAME).exists()
    if existing and not ours:
        raise RuntimeError(f"{out} already holds {', '.join(p.name for p in existing)} not written by "
                           "benchmark.data.synthetic (no synthetic.json); choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / IN_PROGRESS_NAME, "benchmark.data.synthetic is writing here\n")
    (out / MANIFEST_NAME).unlink(missing_ok=True)  # the manifest marks complete output
    for folder in existing:
        shutil.rmtree(folder)


def read_manifest(root: str | Path) -> dict | None:
    """The synthetic manifest of a data root, or None for real data."""
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise ValueError(f"{path}: unreadable synthetic manifest ({e}); regenerate with "
                         f"python -m benchmark.data.synthetic --out {root} --force") from e


@guarded
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.data.synthetic", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", "--root", "--data-root", dest="out", default="datasets/synthetic",
                   help="data root to create (default: datasets/synthetic)")
    p.add_argument("--images", type=int, default=DEFAULT_TRAIN_IMAGES,
                   help=f"train images per domain (default: {DEFAULT_TRAIN_IMAGES})")
    p.add_argument("--val-images", type=int, default=DEFAULT_VAL_IMAGES,
                   help=f"val images per domain (default: {DEFAULT_VAL_IMAGES})")
    p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), default=list(DEFAULT_SIZE),
                   help="image height and width (Mapillary mixes sizes around it; default: %(default)s)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="generator seed (default: 0)")
    p.add_argument("--workers", type=int, default=0, help="parallel processes (default 0: all CPU cores)")
    p.add_argument("--domains", nargs="+", default=list(DATASET_IDS), choices=list(DATASET_IDS), metavar="ID",
                   help="write only these domains (default: all five; e.g. `--domains cityscapes --size 1024 2048 "
                        "--val-images 500` for a full-size Cityscapes-C timing)")
    p.add_argument("--force", action="store_true", help="rewrite even if the output is complete and up to date")
    args = p.parse_args(argv)
    if args.images < 1 or args.val_images < 1:
        p.error("--images and --val-images must be at least 1")
    if min(args.size) < 32:
        p.error(f"--size {args.size[0]} {args.size[1]}: each side must be at least 32 pixels")
    workers = args.workers if args.workers > 0 else (os.cpu_count() or 1)
    settings = Settings(seed=args.seed, train_images=args.images, val_images=args.val_images,
                        height=args.size[0], width=args.size[1])
    start = time.perf_counter()
    try:
        generate(args.out, settings, workers=workers, force=args.force, domains=tuple(args.domains))
    except (RuntimeError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    domains = len(set(args.domains))
    print(f"{domains * (args.images + args.val_images)} image/label pairs in {domains} domain(s) under {args.out} "
          f"({time.perf_counter() - start:.1f} s, {workers} workers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
