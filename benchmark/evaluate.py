"""Evaluate a trained job's final checkpoint on its in-domain val split and its settings' targets.

    python -m benchmark.evaluate --preset smoke --model maskvim --source cityscapes --seed 0
    python -m benchmark.evaluate --preset smoke --model maskvim --source gtav --targets cityscapes bdd

Whole image, single scale, resized to the preset's eval short side; logits resized back to each
label's original size; one confusion matrix over the whole split (design §3, §4). One result file
per (setting, target) cell (design §2 schema) under <results-dir>/runs/. Only the fixed-iteration
`final.pt` is ever evaluated: no checkpoint is selected on a target.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Iterable

import torch

from benchmark import distributed as D
from benchmark import engine, jobs, numerics
from benchmark.cli import add_job_arguments, guarded, job_from_args
from benchmark.complexity import cached_complexity
from benchmark.data.classes import CLASS_NAMES
from benchmark.metrics import miou, miou_present_only, per_class_dict
from benchmark.results import RunResult, git_commit, library_versions, read_result, result_path, write_result
from benchmark.settings import SETTINGS, VAL_SPLIT, get_setting, parse_target, targets_for
from benchmark.spec import JobSpec
from benchmark.train import Trained, build_job_model, trained_from

# ----------------------------------------------------------------------------- which cells a job feeds

def cells_for_source(source: str, settings: Iterable[str], severities: Iterable[int]) -> list[tuple[str, str]]:
    """(setting, target) cells a model trained on `source` feeds among `settings`, in-domain first."""
    out: list[tuple[str, str]] = []
    for sid in settings:
        s = get_setting(sid)
        if s.source == source:
            out.extend((sid, t) for t in targets_for(s, tuple(severities)))
    return out


# A cell's evaluation images can change without its job changing: Cityscapes-C is generated after
# training and can be regenerated in place. Their identity goes into the result's `versions` here.
CITYSCAPES_C_DATA = "cityscapes_c_data"


def eval_data_identity(target: str, data_root: str | os.PathLike) -> str | None:
    """Identity of the images a cell evaluates on, beyond what the config hash covers: for a
    Cityscapes-C target, benchmark.data.cityscapes_c.subset_identity; None for other targets and for a
    Cityscapes-C without a manifest."""
    _, corruption, severity = parse_target(target)
    if corruption is None:
        return None
    from benchmark.data.cityscapes_c import subset_identity

    return subset_identity(data_root, corruption, severity)


def cell_done(results_dir: str | os.PathLike, job: JobSpec, setting: str, target: str,
              data_root: str | os.PathLike | None = None) -> bool:
    """A result file for this cell exists and was made with this job's config and, given the data
    root, from the evaluation images that are there now (see eval_data_identity)."""
    path = result_path(results_dir, job.model.name, job.size, job.variant, setting, target, job.seed)
    if not path.exists():
        return False
    try:
        result = read_result(path)
    except (ValueError, TypeError):
        return False   # unreadable or old schema: redo the cell
    if result.config_hash != job.hash:
        return False
    return data_root is None or result.versions.get(CITYSCAPES_C_DATA) == eval_data_identity(target, data_root)


# ----------------------------------------------------------------------------- provenance

def device_name(info: D.DistInfo) -> str:
    if info.device.type == "cuda":
        name = torch.cuda.get_device_name(info.device)
        return f"{name} x{info.world_size}" if info.enabled else name
    cpu = platform.processor() or platform.machine()
    return f"cpu ({cpu}, {torch.get_num_threads()} threads)" + (f" x{info.world_size}" if info.enabled else "")


def scan_backend_used(model: torch.nn.Module, device: torch.device) -> str:
    """The concrete scan backend a model with a `scan_backend` ran on `device`; "none" for a model without one."""
    if not hasattr(model, "scan_backend"):
        return "none"
    from maskvim.scan import resolve_backend

    return resolve_backend(model.scan_backend, device)


def complexity(job: JobSpec, model: torch.nn.Module, results_dir: str | os.PathLike) -> tuple[int, float | None, float | None]:
    """(params, gmacs, gmacs_no_scan) of the job's model at its `complexity_input` (None: GMACs not
    measured), from benchmark.complexity's store under <results-dir>/complexity/."""
    params = sum(p.numel() for p in model.parameters())
    hw = job.complexity_input
    if hw is None:
        return params, None, None
    # weights and the scan kernel do not change a count
    switches = {k: v for k, v in job.model.to_dict()["switches"].items() if k not in ("pretrained", "scan_backend")}
    c = cached_complexity(results_dir, job.model.name, job.size, hw, switches)
    return params, c["gmacs"], c["gmacs_no_scan"]


# ----------------------------------------------------------------------------- evaluation

def build_eval_dataset(job: JobSpec, target: str, data_root: Path):
    from benchmark.data.datasets import build_dataset

    dataset_id, corruption, severity = parse_target(target)
    kwargs: dict[str, Any] = {"train": False, "eval_short_side": job.eval.short_side}
    if corruption is not None:
        kwargs.update(corruption=corruption, severity=severity)
    return build_dataset(dataset_id, VAL_SPLIT[dataset_id], data_root, **kwargs)


def evaluate_cells(job: JobSpec, trained: Trained, cells: list[tuple[str, str]], data_root: Path,
                   results_dir: str | os.PathLike, info: D.DistInfo, log=print) -> list[Path]:
    """Evaluate every distinct target of `cells` once and write one result file per cell."""
    todo = [(s, t) for s, t in cells if not cell_done(results_dir, job, s, t, data_root)]
    if not todo:
        return []
    numerics.require(job.numerics)
    model = trained.model.eval()
    params, gmacs, gmacs_no_scan = complexity(job, model, results_dir) if info.is_main else (0, None, None)
    common = dict(model=job.model.name, size=job.size, variant=job.variant, source=job.source, seed=job.seed,
                  params=params, gmacs=gmacs, gmacs_no_scan=gmacs_no_scan, iterations=trained.iterations,
                  train_seconds=round(trained.train_seconds, 3),
                  scan_backend=scan_backend_used(model, info.device), device=device_name(info),
                  git_commit=git_commit(), config=job.to_dict(), config_hash=job.hash)
    written: list[Path] = []
    targets = list(dict.fromkeys(t for _, t in todo))
    # the numeric identity of this process (evaluation) and of those that trained the model
    libraries = {**library_versions(), **numerics.identity(job.numerics),
                 numerics.TRAIN_IDENTITY: " -> ".join(trained.numeric_identity) or numerics.NOT_RECORDED}
    for target in targets:
        t0 = time.perf_counter()
        # before reading the images: a result names the images it was computed from, never later ones
        identity = eval_data_identity(target, data_root)
        versions = {**libraries, **({CITYSCAPES_C_DATA: identity} if identity is not None else {})}
        dataset = build_eval_dataset(job, target, data_root)
        cm = engine.evaluate_confusion(model, dataset, info, workers=job.runtime.workers,
                                       desc=f"{job.model.name} {job.source}->{target}")
        seconds = time.perf_counter() - t0
        if not info.is_main:
            continue
        score = miou(cm)
        log(f"[{job.id}] {target}: mIoU {score:.2f} ({len(dataset)} images, {seconds:.1f} s)")
        for setting in (s for s, t in todo if t == target):
            r = RunResult(setting=setting, target=target, miou=round(score, 4), versions=versions,
                          miou_present_only=round(miou_present_only(cm), 4),
                          per_class_iou={k: (None if v is None else round(v, 4))
                                         for k, v in per_class_dict(cm, CLASS_NAMES).items()},
                          confusion_matrix=cm.tolist(), eval_seconds=round(seconds, 3), **common)
            written.append(write_result(results_dir, r))
    return written


def load_trained(job: JobSpec, results_dir: str | os.PathLike, info: D.DistInfo) -> Trained:
    """The job's fixed-iteration final checkpoint (an error says how to train it when missing)."""
    path = jobs.final_checkpoint(results_dir, job.id)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: train this job first (python -m benchmark.train --preset {job.preset} "
            f"--model {job.model.name} --source {job.source} --seed {job.seed} --variant {job.variant})")
    ckpt = engine.load_checkpoint(path, expect_hash=job.hash)
    return trained_from(build_job_model(job), ckpt, info)


@guarded
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_job_arguments(parser)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS),
                        help=f"settings whose targets to evaluate (default: all of {', '.join(SETTINGS)})")
    parser.add_argument("--targets", nargs="+", default=None,
                        help="evaluate only these targets (dataset ids or cityscapes_c/<corruption>/<severity>)")
    args = parser.parse_args(argv)
    preset, info, data_root, results_dir, job = job_from_args(args, program=argv is None)
    cells = cells_for_source(job.source, args.settings, preset.severities)
    if args.targets:
        cells = [(s, t) for s, t in cells if t in args.targets]
        if not cells:
            raise ValueError(f"none of --targets {args.targets} is a target of {args.settings} "
                             f"for source {job.source}")
    elif not cells:
        raise ValueError(f"no setting among {args.settings} trains on {job.source}")
    written = evaluate_cells(job, load_trained(job, results_dir, info), cells, data_root, results_dir, info)
    if info.is_main:
        print(f"{len(written)} result file(s) written under {Path(results_dir) / 'runs'}"
              + ("" if written else " (all cells were already done)"))
    D.shutdown(info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
