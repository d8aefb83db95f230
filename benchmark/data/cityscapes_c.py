"""Cityscapes-C: Cityscapes val under the 16 corruptions of `benchmark.data.corruptions`.

    python -m benchmark.data.cityscapes_c --root DIR [--out DIR] [--severity 5 | --severities 1-5]
        [--corruptions fog,frost,...] [--channel-order rgb|bgr-compat] [--workers N]

Reads `<root>/cityscapes/leftImg8bit/val/<city>/<stem>_leftImg8bit.png` (real or synthetic) and writes
`<out>/cityscapes_c/<corruption>/<severity>/<city>/<stem>_leftImg8bit.png` (`--out` defaults to
`--root`), the layout of docs/ARCHITECTURE.md.

- Seed: each (image, corruption, severity) gets its own, independent of run order and workers:
  the first 4 bytes, big-endian, of sha256("<city>/<stem>/<corruption>/<severity>") (`image_seed`).
- Channel order: `rgb` (default) corrupts the RGB image, as the functions expect. `bgr-compat`
  reproduces HGFormer's generator, which read with cv2 (BGR), fed that to `corrupt` and wrote the
  result with cv2: colour-dependent corruptions (frost, spatter, snow, brightness, saturate) then
  act on swapped channels. The order is recorded in the manifest, and one output folder holds one
  order only.
- Every PNG is written atomically (temporary file + rename). `<out>/cityscapes_c/manifest.json`
  (written atomically, refreshed as files land) records the generator settings and, per file,
  its sha256, size, seed and the sha256 of its source image. A rerun skips files whose bytes
  match the manifest and whose source is unchanged, and redoes missing, altered or unrecorded
  ones (e.g. written just before an interruption, before the manifest caught up). Run one
  generator per output folder at a time.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from benchmark.atomic import atomic_write_bytes, atomic_write_json
from benchmark.data.corruptions import CORRUPTIONS, REFERENCE_PACKAGE, REFERENCE_VERSION, SEVERITIES, corrupt
from benchmark.data.layouts import read_image
from benchmark.errors import HarnessError, guarded

CITYSCAPES_C_DIR = "cityscapes_c"
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
CHANNEL_ORDERS = ("rgb", "bgr-compat")
IMAGE_SUFFIX = "_leftImg8bit.png"
SEED_FORMULA = ('int.from_bytes(sha256(f"{city}/{stem}/{corruption}/{severity}").digest()[:4], "big") '
                'with stem without "_leftImg8bit.png"')
_FLUSH_SECONDS = 30.0


class CityscapesCError(HarnessError, RuntimeError):
    """Input or output that the generator cannot work with; the message names the path."""


def image_seed(name: str, corruption: str, severity: int) -> int:
    """Seed of one output; `name` is "<city>/<stem>" (e.g. "frankfurt/frankfurt_000000_000294")."""
    digest = hashlib.sha256(f"{name}/{corruption}/{severity}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def val_images(root: str | os.PathLike) -> dict[str, Path]:
    """Cityscapes val images under `root`, keyed "<city>/<stem>", sorted."""
    val_dir = Path(root) / "cityscapes" / "leftImg8bit" / "val"
    if not val_dir.is_dir():
        raise CityscapesCError(f"missing Cityscapes val folder {val_dir} (expected "
                               f"<root>/cityscapes/leftImg8bit/val/<city>/<stem>{IMAGE_SUFFIX})")
    images = {p.relative_to(val_dir).as_posix()[: -len(IMAGE_SUFFIX)]: p
              for p in sorted(val_dir.glob(f"*/*{IMAGE_SUFFIX}")) if not p.name.startswith(".")}
    if not images:
        raise CityscapesCError(f"no <city>/*{IMAGE_SUFFIX} images in {val_dir}")
    return images


def output_relpath(name: str, corruption: str, severity: int) -> str:
    """Path of one output relative to `<out>/cityscapes_c/` (also its manifest key)."""
    return f"{corruption}/{severity}/{name}{IMAGE_SUFFIX}"


def generator_settings(channel_order: str) -> dict:
    """What decides the pixels of every file; a folder is only ever extended with equal settings."""
    return {
        "tool": "benchmark.data.cityscapes_c",
        "algorithms": f"{REFERENCE_PACKAGE} {REFERENCE_VERSION} (benchmark.data.corruptions)",
        "package": REFERENCE_PACKAGE,
        "package_version": _version(REFERENCE_PACKAGE),
        "channel_order": channel_order,
        "seed_formula": SEED_FORMULA,
        "png_writer": "opencv imencode, default settings",
    }


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _library_versions() -> dict:
    return {"numpy": np.__version__, "opencv": cv2.__version__,
            **{d: _version(d) for d in ("scipy", "scikit-image", "pillow")}}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path: Path) -> str | None:
    try:
        return _sha256(path.read_bytes())
    except FileNotFoundError:
        return None


# ---------------------------------------------------------------------------------------------
# One image: all requested (corruption, severity) outputs
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Task:
    name: str
    source: str
    base: str
    outputs: tuple[tuple[str, int], ...]
    channel_order: str
    recorded: dict  # manifest entries of this image's outputs (relpath -> entry)


def _run_task(task: _Task) -> list[tuple[str, dict, str]]:
    """Returns (relpath, manifest entry, status) per output; status: kept, written or redone."""
    source = Path(task.source)
    try:
        source_sha = _sha256(source.read_bytes())
    except OSError as e:
        raise CityscapesCError(f"cannot read image {source}: {e}") from e
    image = None
    results = []
    for corruption, severity in task.outputs:
        rel = output_relpath(task.name, corruption, severity)
        path = Path(task.base) / rel
        entry = task.recorded.get(rel)
        on_disk = _file_sha256(path)
        if entry is not None and entry.get("source_sha256") == source_sha and on_disk == entry.get("sha256"):
            results.append((rel, entry, "kept"))
            continue
        if image is None:
            try:
                image = read_image(source)
            except OSError as e:
                raise CityscapesCError(str(e)) from e
            if task.channel_order == "bgr-compat":
                image = np.ascontiguousarray(image[..., ::-1])
        seed = image_seed(task.name, corruption, severity)
        out = corrupt(image, corruption, severity, seed)
        # cv2 writes BGR: an RGB result is flipped; a bgr-compat result is already "BGR"
        bgr = np.ascontiguousarray(out[..., ::-1]) if task.channel_order == "rgb" else out
        ok, encoded = cv2.imencode(".png", bgr)
        if not ok:
            raise CityscapesCError(f"PNG encoding failed for {path}")
        data = encoded.tobytes()
        try:
            atomic_write_bytes(path, data)
        except OSError as e:
            raise CityscapesCError(f"cannot write {path}: {e}") from e
        entry = {"sha256": _sha256(data), "bytes": len(data), "seed": seed, "source_sha256": source_sha}
        results.append((rel, entry, "written" if on_disk is None else "redone"))
    return results


def _init_worker() -> None:
    cv2.setNumThreads(1)  # the workers are the parallelism


# ---------------------------------------------------------------------------------------------
# Manifest
# ---------------------------------------------------------------------------------------------
def read_manifest(base: Path) -> dict | None:
    path = base / MANIFEST_NAME
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
        if not isinstance(manifest.get("files"), dict) or not isinstance(manifest.get("generator"), dict):
            raise ValueError("no 'files' / 'generator' tables")
    except (OSError, ValueError) as e:
        raise CityscapesCError(f"unreadable manifest {path}: {e}; move it away to regenerate") from e
    return manifest


def subset_identity(root: str | os.PathLike, corruption: str, severity: int) -> str | None:
    """What `<root>/cityscapes_c/<corruption>/<severity>/` holds, for a result to record: the generator's
    channel order, the file count and a digest of the manifest's file hashes for that subset. None when
    the folder has no manifest (a Cityscapes-C made by other tools). A ValueError names an unreadable one.

    The images can be regenerated in place (the folder removed, then made again with another channel
    order, or from other source images) without any job's config changing, so a result of this cell
    is only current while this identity is the one it recorded."""
    try:
        manifest = read_manifest(Path(root) / CITYSCAPES_C_DIR)
    except CityscapesCError as e:
        raise ValueError(str(e)) from e
    if manifest is None:
        return None
    prefix = f"{corruption}/{severity}/"
    hashes = {rel: entry.get("sha256") for rel, entry in manifest["files"].items() if rel.startswith(prefix)}
    digest = _sha256(json.dumps(hashes, sort_keys=True).encode())[:16]
    return f"channel_order={manifest['generator'].get('channel_order')} files={len(hashes)} sha256={digest}"


def _check_compatible(manifest: dict, settings: dict, base: Path) -> None:
    for key in ("channel_order", "algorithms", "seed_formula"):
        if manifest["generator"].get(key) != settings[key]:
            raise CityscapesCError(
                f"{base} was generated with {key} = {manifest['generator'].get(key)!r}, this run asks for "
                f"{settings[key]!r}; choose another --out (one folder holds one generator setting)")


def _write_manifest(base: Path, settings: dict, files: dict) -> None:
    atomic_write_json(base / MANIFEST_NAME, {
        "format": MANIFEST_FORMAT,
        "generator": settings,
        "versions": _library_versions(),
        "source": "cityscapes/leftImg8bit/val",
        "files": dict(sorted(files.items())),
    })


def _remove_stale_temporaries(base: Path, corruptions, severities) -> int:
    """Temporary files of writes interrupted by a crash (atomic writes never leave final names)."""
    removed = 0
    for corruption in corruptions:
        for severity in severities:
            for tmp in (base / corruption / str(severity)).glob(f"*/.*{IMAGE_SUFFIX}.tmp.*"):
                tmp.unlink(missing_ok=True)
                removed += 1
    return removed


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------
def generate(root: str | os.PathLike, out: str | os.PathLike | None = None, severities=(5,),
             corruptions=CORRUPTIONS, channel_order: str = "rgb", workers: int = 1, log=print) -> dict:
    """Generate (or complete) Cityscapes-C; returns counts {"kept", "written", "redone"}."""
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(f"channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}")
    unknown = [c for c in corruptions if c not in CORRUPTIONS]
    if unknown:
        raise ValueError(f"unknown corruption(s) {unknown}; expected names from {', '.join(CORRUPTIONS)}")
    bad = [s for s in severities if s not in SEVERITIES]
    if bad:
        raise ValueError(f"severities must be in 1..5, got {bad}")
    images = val_images(root)
    base = Path(out if out is not None else root) / CITYSCAPES_C_DIR
    settings = generator_settings(channel_order)
    manifest = read_manifest(base)
    if manifest is not None:
        _check_compatible(manifest, settings, base)
    files = dict(manifest["files"]) if manifest else {}
    base.mkdir(parents=True, exist_ok=True)
    if _remove_stale_temporaries(base, corruptions, severities):
        log("removed temporary files of an interrupted run")
    outputs = tuple((c, int(s)) for s in severities for c in corruptions)
    tasks = [_Task(name, str(path), str(base), outputs, channel_order,
                   {rel: files[rel] for rel in (output_relpath(name, c, s) for c, s in outputs) if rel in files})
             for name, path in images.items()]
    counts = {"kept": 0, "written": 0, "redone": 0}
    start = last_flush = time.monotonic()
    log(f"Cityscapes-C: {len(images)} images x {len(outputs)} (corruption, severity) -> {base} "
        f"[{channel_order}, {workers} worker(s)]")
    executor = None
    try:
        if workers > 1:
            # a process pool that notices a worker killed (e.g. out of memory) instead of hanging
            executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=_init_worker)
            results = (f.result() for f in as_completed([executor.submit(_run_task, t) for t in tasks]))
        else:
            results = map(_run_task, tasks)
        for done, task_results in enumerate(results, 1):
            for rel, entry, status in task_results:
                files[rel] = entry
                counts[status] += 1
            if time.monotonic() - last_flush > _FLUSH_SECONDS:
                _write_manifest(base, settings, files)
                last_flush = time.monotonic()
                log(f"  {done}/{len(tasks)} images, {time.monotonic() - start:.0f} s")
    except BrokenProcessPool as e:
        raise CityscapesCError(f"a worker process died ({e}); out of memory? Rerun with fewer --workers: "
                               f"finished files are kept") from e
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        _write_manifest(base, settings, files)  # keep what finished, whatever stopped the run
    log(f"done in {time.monotonic() - start:.1f} s: {counts['written']} written, {counts['redone']} redone "
        f"(altered or unrecorded), {counts['kept']} kept (verified against {base / MANIFEST_NAME})")
    return counts


def parse_severities(text: str) -> tuple[int, ...]:
    """"5", "1-5" or "1,3,5" -> sorted unique severities."""
    values: set[int] = set()
    try:
        for part in text.split(","):
            if "-" in part:
                lo, hi = (int(v) for v in part.split("-", 1))
                values.update(range(lo, hi + 1))
            else:
                values.add(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected e.g. 5, 1-5 or 1,3,5; got {text!r}") from None
    if not values or not values <= set(SEVERITIES):
        raise argparse.ArgumentTypeError(f"severities must lie in 1..5, got {text!r}")
    return tuple(sorted(values))


def parse_corruptions(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in CORRUPTIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown corruption(s) {unknown or text!r}; expected names from "
                                         f"{', '.join(CORRUPTIONS)}")
    return names


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmark.data.cityscapes_c",
        description="Write Cityscapes-C (imagecorruptions' 16 corruptions of Cityscapes val) with a "
                    "checksum manifest; resumable.")
    p.add_argument("--root", "--data-root", dest="root", required=True,
                   help="data root holding cityscapes/leftImg8bit/val")
    p.add_argument("--out", default=None, help="data root to write cityscapes_c/ into (default: --root)")
    sev = p.add_mutually_exclusive_group()
    sev.add_argument("--severity", type=parse_severities, dest="severities", metavar="N",
                     help="one severity (default 5, as in HGFormer)")
    sev.add_argument("--severities", type=parse_severities, dest="severities", metavar="LIST",
                     help="e.g. 1-5 or 1,3,5")
    p.add_argument("--corruptions", type=parse_corruptions, default=CORRUPTIONS, metavar="NAMES",
                   help="comma-separated subset (default: all 16)")
    p.add_argument("--channel-order", choices=CHANNEL_ORDERS, default="rgb",
                   help="rgb (default) or bgr-compat: feed BGR to the RGB functions as HGFormer did")
    p.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)), metavar="N",
                   help="processes (default: all cores available)")
    return p


@guarded
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    try:
        generate(args.root, args.out, args.severities or (5,), args.corruptions, args.channel_order,
                 args.workers)
    except CityscapesCError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
