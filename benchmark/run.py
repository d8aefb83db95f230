"""The grid: train once per (model, source, seed, variant), evaluate every cell that job feeds.

    python -m benchmark.run --preset smoke
    python -m benchmark.run --preset paper --data-root /data --models maskvim --seeds 0 1 2 --shard 3/8
    torchrun --nproc-per-node 8 -m benchmark.run --preset paper --data-root /data --settings gta

A job trained on a source is evaluated on that source's val split (in-domain) and on every target
of every requested setting that trains on it (Cityscapes-C included for the cityscapes source);
one result file per (setting, target) cell. Rerunning skips finished cells (result file present
with the same config hash) and resumes started jobs from their last checkpoint. `--shard i/n`
(0 <= i < n) runs every n-th job starting at i, for scheduler job arrays: jobs are listed in a
fixed order, so n shards partition the grid. `--claim-jobs` lets any number of processes started
with the same flags share the grid dynamically instead: each takes the next unclaimed job, longest
first, under a file lock in <results-dir>/claims/ that the OS drops when its holder exits or dies
(run_all.sh runs its parallel workers this way, so no core idles while another has jobs queued).
Named variants train their own model (see benchmark.variants); `--models` chooses the models of the
`default` variant.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from benchmark import distributed as D
from benchmark import jobs, numerics
from benchmark.cli import add_preset_arguments, guarded, overrides_from_args
from benchmark.evaluate import cell_done, cells_for_source, evaluate_cells
from benchmark.jobs import check_data_root, default_path, make_job
from benchmark.models import get_family, list_models
from benchmark.presets import Preset, apply_overrides, get_preset
from benchmark.settings import SETTINGS, get_setting
from benchmark.spec import JobSpec
from benchmark.train import train_job


@dataclass(frozen=True)
class GridJob:
    job: JobSpec
    cells: tuple[tuple[str, str], ...]   # (setting, target)


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: expected i/n, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard {text!r}: need n >= 1 and 0 <= i < n")
    return i, n


def plan(preset: Preset, models: Sequence[str], settings: Sequence[str], seeds: Sequence[int],
         variants: Sequence[str], data_root: str | None = None, world_size: int = 1) -> list[GridJob]:
    """Every job of the grid in a fixed order (variant, model, source, seed), with the cells it feeds."""
    sources = list(dict.fromkeys(get_setting(s).source for s in settings))
    out: list[GridJob] = []
    for variant in dict.fromkeys(variants):
        variant_models = models if variant == "default" else [None]   # a named variant brings its model
        for model in variant_models:
            for source in sources:
                for seed in dict.fromkeys(seeds):
                    job = make_job(preset, model=model, source=source, seed=seed, variant=variant,
                                   world_size=world_size, data_root=data_root)
                    out.append(GridJob(job, tuple(cells_for_source(source, settings, preset.severities))))
    return out


def shard_jobs(grid: list[GridJob], shard: tuple[int, int] | None) -> list[GridJob]:
    if shard is None:
        return grid
    i, n = shard
    return grid[i::n]


def longest_first(grid: list[GridJob]) -> list[GridJob]:
    """Jobs by expected cost, largest first (each family registers the relative CPU cost of its training
    step; more cells = more evaluation), so parallel workers end close together."""
    return sorted(grid, key=lambda gj: (-get_family(gj.job.model.name).step_cost, -len(gj.cells)))


@contextlib.contextmanager
def claimed(claims_dir: Path, job_id: str) -> Iterator[bool]:
    """Hold an exclusive lock on <claims_dir>/<job_id>.lock while the block runs; yields False at once
    if another process holds it. The OS releases the lock when its holder exits or is killed, so a
    dead worker never leaves a job claimed: the next run resumes it from its checkpoint."""
    import fcntl

    claims_dir.mkdir(parents=True, exist_ok=True)
    with open(claims_dir / f"{job_id}.lock", "a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def run_grid(preset: str | Preset, models: Sequence[str] | None = None, settings: Sequence[str] | None = None,
             seeds: Sequence[int] | None = None, variants: Sequence[str] | None = None,
             data_root: str | os.PathLike | None = None, results_dir: str | os.PathLike | None = None,
             shard: tuple[int, int] | str | None = None, overrides: dict[str, Any] | None = None,
             device: str | None = None, log=print, claim_jobs: bool = False) -> dict[str, list[str]]:
    """Run (the shard of) a grid; returns job ids by outcome: 'skipped' (every cell done), 'ran', and
    with `claim_jobs` 'claimed_elsewhere' (another worker holds it; see the module docstring).

    `preset` is a name or a Preset; `overrides` replace preset fields (e.g. the preset's `ablation`
    overrides, or {"iterations": 100}). Relative `data_root` / `results_dir` are taken from the
    cwd; None means the preset's data root and results/ in the repository.
    """
    p = get_preset(preset) if isinstance(preset, str) else preset
    p = apply_overrides(p, overrides)
    model_names = list(models) if models else list_models()
    settings = list(settings) if settings else list(SETTINGS)
    seeds = list(seeds) if seeds is not None else [0]
    variants = list(variants) if variants else ["default"]
    if isinstance(shard, str):
        shard = parse_shard(shard)
    root = default_path(data_root, p.data_root)
    results = jobs.results_dir_of(results_dir)
    info = D.init_from_env(device)
    grid = shard_jobs(plan(p, model_names, settings, seeds, variants, str(root), info.world_size), shard)  # checks names
    if claim_jobs:
        if info.world_size > 1:
            raise ValueError("--claim-jobs shares a grid between independent processes; under torchrun every "
                             "rank runs every job, so leave it out (or use --shard for job arrays)")
        grid = longest_first(grid)
    check_data_root(root, p.name)
    outcome: dict[str, list[str]] = {"skipped": [], "ran": []}
    t0 = time.perf_counter()
    for k, gj in enumerate(grid, 1):
        with claimed(jobs.claims_dir(results), gj.job.id) if claim_jobs else contextlib.nullcontext(True) as mine:
            if not mine:
                outcome.setdefault("claimed_elsewhere", []).append(gj.job.id)
                continue
            outcome[_run_job(gj, k, len(grid), root, results, info, log)].append(gj.job.id)
    if info.is_main:
        elsewhere = len(outcome.get("claimed_elsewhere", []))
        log(f"[grid] {len(outcome['ran'])} job(s) run, {len(outcome['skipped'])} already done, "
            + (f"{elsewhere} run by other workers, " if elsewhere else "")
            + f"{time.perf_counter() - t0:.1f} s; results in {results / 'runs'}")
    return outcome


def _run_job(gj: GridJob, k: int, total: int, root: Path, results: Path, info: D.DistInfo, log) -> str:
    """Train (or resume) one job and evaluate its missing cells; 'skipped' if every cell is done."""
    job = gj.job
    if all(cell_done(results, job, s, t, root) for s, t in gj.cells):
        return "skipped"
    if info.is_main:
        log(f"[grid] job {k}/{total}: {job.id} ({len(gj.cells)} cells)")
    trained = train_job(job, root, results, info, log=log)
    evaluate_cells(job, trained, list(gj.cells), root, results, info, log=log)
    D.barrier(info)
    return "ran"


@guarded
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=None,
                        help=f"registered models (default: {' '.join(list_models())})")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), help=f"default: {' '.join(SETTINGS)}")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="default: 0")
    parser.add_argument("--variants", nargs="+", default=["default"],
                        help="ablation variant names (benchmark.variants); default: default")
    parser.add_argument("--shard", default=None, help="i/n: run only jobs i, i+n, i+2n, ... (0 <= i < n)")
    parser.add_argument("--claim-jobs", action="store_true",
                        help="share the grid with other processes started with the same flags: each runs the "
                             "next unclaimed job, longest first (file locks in <results-dir>/claims/)")
    parser.add_argument("--dry-run", action="store_true", help="list the jobs of this shard and exit")
    add_preset_arguments(parser)
    args = parser.parse_args(argv)
    if args.dry_run:
        p = apply_overrides(get_preset(args.preset), overrides_from_args(args))
        grid = shard_jobs(plan(p, args.models or list_models(), args.settings, args.seeds, args.variants),
                          parse_shard(args.shard))
        for gj in longest_first(grid) if args.claim_jobs else grid:
            print(f"{gj.job.id}\t{len(gj.cells)} cells")
        return 0
    overrides = overrides_from_args(args)
    numerics.enter(apply_overrides(get_preset(args.preset), overrides).numerics, program=argv is None)
    run_grid(args.preset, args.models, args.settings, args.seeds, args.variants, args.data_root,
             args.results_dir, args.shard, overrides, device=args.device,
             claim_jobs=args.claim_jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
