"""Check a data root: what each dataset holds, and what is missing or wrong.

    python -m benchmark.data.check --root datasets [--datasets gtav synthia] [--workers 4] [--quick]

Per dataset under `<root>/<id>/` (and Cityscapes-C under `<root>/cityscapes_c/`): image / label pairs per
split; images without label and labels without image; missing folders and split lists; names in a split
list with no file, and files listed in two splits; counts against the official split sizes (or, for a root
written by benchmark.data.synthetic, against its manifest); and for every pair (unless --quick) that both
files decode completely, that the label holds only its dataset's ids, and that image and label have the same
size. Exits 1 when anything is wrong, 0 otherwise. Datasets not present are listed and skipped unless named
with --datasets.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from benchmark.data.labels import DATASET_IDS, LabelValueError, label_spec
from benchmark.data.layouts import (CITYSCAPES_C_DIR, EXPECTED_COUNTS, SPLITS, LayoutError, dataset_dir,
                                    image_size, read_image, read_raw_label, split_files)
from benchmark.data.synthetic import read_manifest
from benchmark.errors import guarded

# Splits the benchmark reads (design §1, §4); the others are checked when present.
REQUIRED_SPLITS = {"cityscapes": ("train", "val"), "bdd": ("val",), "mapillary": ("train", "val"),
                   "gtav": ("train", "val"), "synthia": ("val",)}
MAX_LISTED = 10  # paths printed per kind of problem; the count is always complete


@dataclass
class Report:
    name: str
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add_paths(self, what: str, paths: list) -> None:
        if paths:
            shown = "\n      ".join(str(p) for p in paths[:MAX_LISTED])
            more = f"\n      ... and {len(paths) - MAX_LISTED} more" if len(paths) > MAX_LISTED else ""
            self.problems.append(f"{len(paths)} {what}:\n      {shown}{more}")


def check_pair(job: tuple[str, str, str, bool]) -> list[str]:
    """Problems of one image / label pair (empty when fine)."""
    dataset_id, image, label, quick = job
    problems = []
    try:
        img_hw = image_size(image) if quick else read_image(image).shape[:2]
    except OSError as e:
        problems.append(str(e))
        img_hw = None
    try:
        if quick:
            lbl_hw = image_size(label)
        else:
            raw = read_raw_label(dataset_id, label)
            label_spec(dataset_id).to_train_ids(raw, label)
            lbl_hw = raw.shape[:2]
    except (OSError, LabelValueError) as e:
        problems.append(str(e))
        lbl_hw = None
    if img_hw is not None and lbl_hw is not None and tuple(img_hw) != tuple(lbl_hw):
        problems.append(f"size mismatch: image {image} is {img_hw[1]}x{img_hw[0]}, label {label} is "
                        f"{lbl_hw[1]}x{lbl_hw[0]} (width x height)")
    return problems


def _map(fn, jobs: list, workers: int) -> list:
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(fn, jobs, chunksize=32))
    return [fn(j) for j in jobs]


def check_dataset(root: str | Path, dataset_id: str, expected: dict[str, int | tuple[int, ...]] | None = None,
                  required: tuple[str, ...] | None = None, workers: int = 1, quick: bool = False) -> Report:
    """Check `<root>/<dataset_id>/`. `expected` maps split -> accepted number(s) of pairs (None: do not compare);
    a split in `required` (default: those the benchmark reads) that is absent is a problem."""
    report = Report(dataset_id)
    required = REQUIRED_SPLITS[dataset_id] if required is None else required
    splits = SPLITS[dataset_id] if expected is None else tuple(expected)
    listed_in: dict[str, str] = {}
    jobs = []
    for split in splits:
        try:
            files = split_files(root, dataset_id, split)
        except LayoutError as e:
            if split in required:
                report.problems.append(f"{split}: {e}")
            else:
                report.notes.append(f"{split}: not present (not used by the benchmark)")
            continue
        if files.listed is not None:
            report.notes.append(f"{split}: split list {files.list_path}")
            missing = [n for n in files.listed if n not in files.images and n not in files.labels]
            report.add_paths(f"{split} names in {files.list_path} with neither image nor label", missing)
            twice = [n for n in files.listed if listed_in.setdefault(n, split) != split]
            report.add_paths(f"{split} names also listed in another split (splits overlap)", twice)
        no_label, no_image = files.unpaired()
        report.add_paths(f"{split} images without label", no_label)
        report.add_paths(f"{split} labels without image", no_image)
        pairs = sorted(files.images.keys() & files.labels.keys())
        report.counts[split] = len(pairs)
        accepted = _accepted_counts(expected, split)
        if accepted and len(pairs) not in accepted:
            report.problems.append(f"{split}: {len(pairs)} image/label pairs, expected "
                                   + " or ".join(str(n) for n in accepted))
        jobs.extend((dataset_id, str(files.images[k]), str(files.labels[k]), quick) for k in pairs)
    if listed_in:
        _note_unlisted(root, dataset_id, listed_in, report)
    for problems in _map(check_pair, jobs, workers):
        report.problems.extend(problems)
    return report


def _accepted_counts(expected: dict | None, split: str) -> tuple[int, ...]:
    if expected is None or split not in expected:
        return ()
    value = expected[split]
    return tuple(value) if isinstance(value, (list, tuple)) else (int(value),)


def _note_unlisted(root: str | Path, dataset_id: str, listed_in: dict[str, str], report: Report) -> None:
    folder = dataset_dir(root, dataset_id) / ("images" if dataset_id == "gtav" else "RGB")
    unlisted = [p for p in sorted(folder.glob("*.png")) if p.stem not in listed_in and not p.name.startswith(".")]
    if unlisted:
        report.notes.append(f"{len(unlisted)} images are in no split list checked (e.g. {unlisted[0].name})")


def check_cityscapes_c(root: str | Path, workers: int = 1, quick: bool = False) -> Report:
    """Every `<root>/cityscapes_c/<corruption>/<severity>/` must mirror Cityscapes val image for image, with
    images of the original's size; where the generator's manifest (benchmark.data.cityscapes_c) exists,
    every file must be recorded in it with the same sha256 and a source image that has not changed since."""
    from benchmark.data.cityscapes_c import CityscapesCError, MANIFEST_NAME, output_relpath
    from benchmark.data.cityscapes_c import read_manifest as read_c_manifest

    report = Report(CITYSCAPES_C_DIR)
    base = Path(root) / CITYSCAPES_C_DIR
    try:
        val = split_files(root, "cityscapes", "val").images
    except LayoutError as e:
        report.problems.append(f"cannot check against Cityscapes val: {e}")
        return report
    try:
        manifest = read_c_manifest(base)
    except CityscapesCError as e:
        report.problems.append(str(e))
        manifest = None
    recorded = manifest["files"] if manifest else {}
    if manifest:
        report.notes.append(f"manifest {base / MANIFEST_NAME}: {len(recorded)} files, channel order "
                            f"{manifest['generator'].get('channel_order')}" + ("" if not quick else " (hashes not checked: --quick)"))
    else:
        report.notes.append(f"no manifest {base / MANIFEST_NAME}: file contents not verified")
    jobs, on_disk = [], set()
    for corruption_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        for severity_dir in sorted(p for p in corruption_dir.iterdir() if p.is_dir()):
            key = f"{corruption_dir.name}/{severity_dir.name}"
            found = {p.relative_to(severity_dir).as_posix()[: -len("_leftImg8bit.png")]: p
                     for p in severity_dir.glob("*/*_leftImg8bit.png") if not p.name.startswith(".")}
            report.counts[key] = len(found)
            report.add_paths(f"{key}: Cityscapes val images without a corrupted version",
                             [val[k] for k in sorted(val.keys() - found.keys())])
            report.add_paths(f"{key}: images that are not in Cityscapes val", [found[k] for k in sorted(found.keys() - val.keys())])
            for k in sorted(found.keys() & val.keys()):
                rel = output_relpath(k, corruption_dir.name, severity_dir.name)
                on_disk.add(rel)
                entry = recorded.get(rel) if manifest else None
                if manifest and entry is None:
                    report.problems.append(f"{found[k]}: not recorded in {base / MANIFEST_NAME} (an interrupted "
                                           f"run? rerun python -m benchmark.data.cityscapes_c --root {root})")
                jobs.append((str(found[k]), str(val[k]), quick, None if quick or entry is None else entry.get("sha256")))
    report.add_paths(f"files recorded in {base / MANIFEST_NAME} but missing",
                     [base / rel for rel in sorted(set(recorded) - on_disk)])
    if not report.counts:
        report.problems.append(f"{base} holds no <corruption>/<severity>/ folders")
    for problems in _map(_check_corrupted, jobs, workers):
        report.problems.extend(problems)
    if manifest and not quick:
        _check_sources_unchanged(val, recorded, base, workers, report)
    return report


def _file_sha256(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def _check_sources_unchanged(val: dict[str, Path], recorded: dict, base: Path, workers: int, report: Report) -> None:
    """Cityscapes val images that changed after their corrupted versions were made (stale outputs)."""
    wanted: dict[str, set[str]] = {}
    for rel, entry in recorded.items():
        name = rel.split("/", 2)[2][: -len("_leftImg8bit.png")]
        if name in val and "source_sha256" in entry:
            wanted.setdefault(name, set()).add(entry["source_sha256"])
    names = sorted(wanted)
    current = dict(zip(names, _map(_file_sha256, [str(val[n]) for n in names], workers)))
    stale = [val[n] for n in names if wanted[n] != {current[n]}]
    report.add_paths(f"Cityscapes val images changed since {base.name} was generated from them (rerun "
                     "python -m benchmark.data.cityscapes_c)", stale)


def _check_corrupted(job: tuple[str, str, bool, str | None]) -> list[str]:
    corrupted, original, quick, expected_sha = job
    try:
        if quick:
            hw = image_size(corrupted)
        else:
            data = Path(corrupted).read_bytes()
            if expected_sha is not None and hashlib.sha256(data).hexdigest() != expected_sha:
                return [f"{corrupted}: content differs from its manifest checksum (altered or partly written)"]
            try:
                with Image.open(io.BytesIO(data)) as im:
                    im.load()
                    hw = (im.height, im.width)
            except (OSError, SyntaxError, ValueError) as e:
                raise OSError(f"cannot read image {corrupted}: {e}") from e
        if tuple(hw) != image_size(original):
            return [f"size mismatch: {corrupted} is {hw[1]}x{hw[0]}, its original {original} is not"]
    except OSError as e:
        return [str(e)]
    return []


def check_root(root: str | Path, datasets: list[str] | None = None, workers: int = 1,
               quick: bool = False) -> list[Report]:
    """Check every dataset under `root` (or those named); a named dataset that is absent is a problem."""
    root = Path(root)
    manifest = read_manifest(root)
    reports = []
    named = datasets is not None
    for dataset_id in (datasets or DATASET_IDS):
        if dataset_id == CITYSCAPES_C_DIR:
            continue
        if not dataset_dir(root, dataset_id).is_dir():
            r = Report(dataset_id)
            (r.problems if named else r.notes).append(f"not present: no folder {dataset_dir(root, dataset_id)}")
            reports.append(r)
            continue
        expected = manifest["counts"][dataset_id] if manifest is not None else EXPECTED_COUNTS[dataset_id]
        required = tuple(expected) if manifest is not None else REQUIRED_SPLITS[dataset_id]
        reports.append(check_dataset(root, dataset_id, expected, required, workers=workers, quick=quick))
    if (root / CITYSCAPES_C_DIR).is_dir() and (not named or CITYSCAPES_C_DIR in datasets):
        reports.append(check_cityscapes_c(root, workers=workers, quick=quick))
    elif named and CITYSCAPES_C_DIR in datasets:
        r = Report(CITYSCAPES_C_DIR)
        r.problems.append(f"not present: no folder {root / CITYSCAPES_C_DIR}")
        reports.append(r)
    return reports


def format_report(reports: list[Report], root: Path, synthetic: bool) -> str:
    lines = [f"data root {root}" + (" (synthetic stand-ins; counts checked against synthetic.json)" if synthetic else "")]
    for r in reports:
        status = "OK" if r.ok else f"{len(r.problems)} problem(s)"
        counts = ", ".join(f"{k} {v}" for k, v in r.counts.items()) or "nothing found"
        lines.append(f"{r.name}: {status}; {counts}")
        lines.extend(f"  note: {n}" for n in r.notes)
        lines.extend(f"  PROBLEM: {p}" for p in r.problems)
    return "\n".join(lines)


@guarded
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.data.check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", "--data-root", dest="root", default="datasets", help="data root (default: datasets)")
    p.add_argument("--datasets", nargs="+", choices=[*DATASET_IDS, CITYSCAPES_C_DIR], default=None,
                   help="check only these (default: every dataset present)")
    p.add_argument("--workers", type=int, default=1, help="parallel processes for decoding files (default: 1)")
    p.add_argument("--quick", action="store_true", help="read file headers only (no decoding, no label values)")
    args = p.parse_args(argv)
    root = Path(args.root)
    if not root.is_dir():
        print(f"error: --root {root} does not exist (create it with python -m benchmark.data.synthetic --out {root},"
              " or see datasets/README.md)", file=sys.stderr)
        return 1
    try:
        synthetic = read_manifest(root) is not None
        reports = check_root(root, args.datasets, workers=max(1, args.workers), quick=args.quick)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(format_report(reports, root, synthetic))
    present = [r for r in reports if r.counts]
    if not present:
        print(f"error: no dataset found under {root}", file=sys.stderr)
        return 1
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
