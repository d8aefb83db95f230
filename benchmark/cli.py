"""What the job CLIs share: the preset and job flags, and (re-exported from ``benchmark.errors``) the one
error path every CLI goes through: ``HarnessError`` and ``guarded(main)``. Torch-free at import.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from benchmark import jobs, numerics
from benchmark.errors import CheckpointError, HarnessError, NonFiniteLossError, guarded  # noqa: F401
from benchmark.jobs import check_data_root, default_path, make_job
from benchmark.models import list_models
from benchmark.numerics import MODES
from benchmark.presets import PRESETS, Preset, apply_overrides, get_preset
from benchmark.settings import DATASET_IDS


def add_preset_arguments(p: argparse.ArgumentParser) -> None:
    """The flags shared by train / evaluate / run: preset choice, paths and field overrides."""
    p.add_argument("--preset", default="smoke", choices=list(PRESETS), help="run size (default: smoke)")
    p.add_argument("--data-root", default=None, help="data root (default: the preset's, e.g. datasets/synthetic)")
    p.add_argument("--results-dir", default=None,
                   help="where runs/ and checkpoints/ go (default: results/ in the repository)")
    p.add_argument("--size", default=None, help="model size micro|tiny|small|base (default: the preset's)")
    p.add_argument("--iters", type=int, default=None, help="training iterations")
    p.add_argument("--warmup-iters", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None, help="global images per optimizer step")
    p.add_argument("--batch-per-device", type=int, default=None,
                   help="images per forward pass; the rest of the global batch is ranks x gradient accumulation")
    p.add_argument("--crop", type=int, nargs=2, metavar=("H", "W"), default=None, help="training crop")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--eval-short-side", type=int, default=None)
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers per process")
    p.add_argument("--checkpoint-interval", type=int, default=None)
    p.add_argument("--severities", type=int, nargs="+", default=None, help="Cityscapes-C severities")
    p.add_argument("--pretrained-dir", default=None,
                   help="folder with the official VMamba v0 checkpoints ('none': train from scratch)")
    p.add_argument("--scan-backend", default=None, help="auto|ref|cpu|cuda")
    add_numerics_argument(p)
    p.add_argument("--device", default=None, help="cpu|cuda (default: cuda when available)")


def add_numerics_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--numerics", default=None, choices=list(MODES),
                   help="portable: the same numbers on every x86-64 CPU with AVX2 (pinned library code paths, one "
                        "thread per process); native: the machine's fastest paths (default: the preset's; "
                        "test / smoke portable, paper native)")


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Preset field overrides from the flags that were given (a flag left out has no key; `--pretrained-dir
    none` is the key with value None: from scratch)."""
    given = {"size": args.size, "iterations": args.iters, "warmup_iters": args.warmup_iters,
             "batch_size": args.batch_size, "batch_per_device": args.batch_per_device,
             "crop_size": tuple(args.crop) if args.crop else None, "lr": args.lr,
             "eval_short_side": args.eval_short_side, "workers": args.workers,
             "checkpoint_interval": args.checkpoint_interval,
             "severities": tuple(args.severities) if args.severities else None,
             "scan_backend": args.scan_backend, "numerics": args.numerics}
    out = {k: v for k, v in given.items() if v is not None}
    if args.pretrained_dir is not None:
        out["pretrained_dir"] = (None if args.pretrained_dir.lower() == "none"
                                 else str(Path(args.pretrained_dir).expanduser().resolve()))
    return out


def preset_from_args(args: argparse.Namespace) -> Preset:
    return apply_overrides(get_preset(args.preset), overrides_from_args(args))


def add_job_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags naming one training job (model, source, seed, variant) plus the preset flags."""
    parser.add_argument("--model", default="maskvim", choices=list_models())
    parser.add_argument("--source", default="cityscapes", choices=list(DATASET_IDS), help="dataset trained on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", default="default", help="ablation variant name (benchmark.variants)")
    add_preset_arguments(parser)


def job_from_args(args: argparse.Namespace, *, program: bool):
    """(preset, distributed info, data root, results dir, JobSpec) from the flags of `add_job_arguments`, with
    the preset's numerics put in force (`program`: the CLI runs as its own process and may restart itself
    with the numerics environment, see benchmark.numerics.enter)."""
    preset = preset_from_args(args)
    numerics.enter(preset.numerics, program=program)
    from benchmark import distributed as D   # torch: only the training / evaluation CLIs call this

    info = D.init_from_env(args.device)
    data_root = check_data_root(default_path(args.data_root, preset.data_root), preset.name)
    results_dir = jobs.results_dir_of(args.results_dir)
    job = make_job(preset, model=args.model, source=args.source, seed=args.seed, variant=args.variant,
                   world_size=info.world_size, data_root=str(data_root))
    return preset, info, data_root, results_dir, job
