"""Convert a dataset's labels to train ids once, into a cache beside the data.

    python -m benchmark.data.prepare --dataset gtav --root datasets [--splits train val] [--workers 4]

Writes `<root>/<id>/.trainids/<label path>.png` (8-bit PNG of train ids, 255 ignore) for every label of
the chosen splits; the originals are never touched. Each file is written atomically, so an interrupted
run leaves no half-written file; a rerun skips files that are done (newer than their source, fully
decodable, same size) and redoes the rest, so it is idempotent and resumable. The loaders use a cache file
when it is fresh and convert on the fly otherwise: preparing only saves time.
"""
from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from benchmark.atomic import atomic_path
from benchmark.data.datasets import load_train_ids
from benchmark.data.labels import DATASET_IDS
from benchmark.data.layouts import (CACHE_DIRNAME, SPLITS, LayoutError, cache_path, dataset_dir, image_size,
                                    list_samples, read_raw_label, split_files)
from benchmark.errors import guarded


@dataclass(frozen=True)
class PrepareReport:
    converted: int
    skipped: int

    @property
    def total(self) -> int:
        return self.converted + self.skipped


def cache_is_done(cached: Path, label: Path) -> bool:
    """A finished cache file: newer than its source, decodes completely, same size as the source."""
    try:
        if cached.stat().st_mtime_ns < label.stat().st_mtime_ns:
            return False
        arr = read_raw_label("bdd", cached)
        return arr.ndim == 2 and arr.shape == image_size(label)
    except OSError:
        return False


def write_train_id_png(path: Path, train_ids: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(train_ids, dtype=np.uint8)).save(tmp, format="PNG")


def _convert_one(args: tuple[str, str, str]) -> bool:
    """Convert one label; True when written, False when it was already done."""
    root, dataset_id, label = args
    label_path = Path(label)
    cached = cache_path(root, dataset_id, label_path)
    if cache_is_done(cached, label_path):
        return False
    write_train_id_png(cached, load_train_ids(root, dataset_id, label_path, use_cache=False))
    return True


def _remove_stale_temporaries(cache_root: Path) -> None:
    # Left by a run killed mid-write (atomic_path's temp files start with "." and contain ".tmp.").
    if cache_root.is_dir():
        for p in cache_root.rglob(".*.tmp.*"):
            p.unlink(missing_ok=True)


def prepare(root: str | Path, dataset_id: str, splits: list[str] | None = None, workers: int = 1) -> PrepareReport:
    """Fill the train-id cache of `dataset_id` under `root`; returns how many files were written / skipped."""
    splits = list(splits or SPLITS[dataset_id])
    labels: list[Path] = []
    for split in splits:
        labels.extend(s.label for s in list_samples(root, dataset_id, split))
    _remove_stale_temporaries(dataset_dir(root, dataset_id) / CACHE_DIRNAME)
    jobs = [(str(root), dataset_id, str(p)) for p in labels]
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            written = list(pool.map(_convert_one, jobs, chunksize=16))
    else:
        written = [_convert_one(j) for j in jobs]
    n = sum(written)
    return PrepareReport(converted=n, skipped=len(written) - n)


def _available_splits(root: Path, dataset_id: str) -> list[str]:
    """Splits of the dataset present on disk (GTAV's test split, for example, is often not downloaded)."""
    found = []
    for split in SPLITS[dataset_id]:
        try:
            if split_files(root, dataset_id, split).images:
                found.append(split)
        except LayoutError:
            continue
    return found


@guarded
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.data.prepare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, choices=DATASET_IDS, help="dataset id")
    p.add_argument("--root", "--data-root", dest="root", default="datasets",
                   help="data root holding <root>/<dataset id>/ (default: datasets)")
    p.add_argument("--splits", nargs="+", default=None,
                   help="splits to convert (default: every split present on disk)")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (default: 1)")
    args = p.parse_args(argv)
    root = Path(args.root)
    if not dataset_dir(root, args.dataset).is_dir():
        p.error(f"--root: no {args.dataset} data at {dataset_dir(root, args.dataset)}")
    if args.splits:
        bad = [s for s in args.splits if s not in SPLITS[args.dataset]]
        if bad:
            p.error(f"--splits: {args.dataset} has no split {bad}; choose from {', '.join(SPLITS[args.dataset])}")
        splits = args.splits
    else:
        splits = _available_splits(root, args.dataset)
        if not splits:
            p.error(f"no {args.dataset} split found under {dataset_dir(root, args.dataset)}; "
                    "run python -m benchmark.data.check for details")
    try:
        report = prepare(root, args.dataset, splits, workers=max(1, args.workers))
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    cache = dataset_dir(root, args.dataset) / CACHE_DIRNAME
    print(f"{args.dataset} ({', '.join(splits)}): {report.converted} labels converted, {report.skipped} already "
          f"done, cache {cache}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
