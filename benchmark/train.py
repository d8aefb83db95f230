"""Train one job (model, size, variant, source, seed) to its fixed final iteration.

    python -m benchmark.train --preset smoke --model maskvim --source cityscapes --seed 0
    torchrun --nproc-per-node 4 -m benchmark.train --preset paper --data-root /data --model maskvim --source gtav

Checkpoints go to <results-dir>/checkpoints/<job id>/: `last.pt` every --checkpoint-interval
iterations (resumable: model, optimizer, schedule position, RNG states, sampler position) and
`final.pt` at the last iteration, the only checkpoint ever evaluated (no selection on a target).
Rerunning the same command resumes from `last.pt`, or does nothing once `final.pt` exists.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from benchmark import distributed as D
from benchmark import engine, jobs, models
from benchmark.jobs import default_path
from benchmark.presets import PRESETS, Preset, apply_overrides, config_hash, get_preset, resolve_config
from benchmark.settings import DATASET_IDS, TRAIN_SPLIT


# ----------------------------------------------------------------------------- jobs

@dataclass(frozen=True)
class Job:
    """One training run; every result cell it feeds shares its config and hash."""
    model: str
    source: str
    seed: int
    variant: str
    config: dict[str, Any]

    @property
    def hash(self) -> str:
        return config_hash(self.config)

    @property
    def size(self) -> str:
        return self.config["model"]["size"]

    @property
    def id(self) -> str:
        return f"{self.model}-{self.size}__{self.variant}__{self.source}__seed{self.seed}__{self.hash}"


def variant_spec(variant: str, model: str | None) -> tuple[str, dict[str, Any]]:
    """(model, build_model switches) of a variant name; 'default' is the model with the paper's defaults."""
    if variant == "default":
        if model is None:
            raise ValueError("variant 'default' needs --model")
        return model, {}
    from benchmark.variants import get_variant, variant_model

    v = get_variant(variant)
    return variant_model(variant, model), v.build_kwargs()


def make_job(preset: Preset, *, model: str | None, source: str, seed: int, variant: str = "default",
             world_size: int = 1, data_root: str | None = None) -> Job:
    if source not in DATASET_IDS:
        raise ValueError(f"unknown source dataset {source!r}; valid ids: {', '.join(DATASET_IDS)}")
    from benchmark.data.synthetic import manifest_digest

    model, switches = variant_spec(variant, model)
    config = resolve_config(preset, model=model, source=source, seed=seed, variant=variant, switches=switches,
                            world_size=world_size, data_root=data_root,
                            data_digest=manifest_digest(default_path(data_root, preset.data_root)))
    return Job(model=model, source=source, seed=seed, variant=variant, config=config)


def final_checkpoint(results_dir: str | os.PathLike, job: Job) -> Path:
    return jobs.final_checkpoint(results_dir, job.id)


# ----------------------------------------------------------------------------- paths and inputs

def check_data_root(root: Path, preset_name: str) -> Path:
    if not root.is_dir():
        hint = (f"create the synthetic stand-ins with `python -m benchmark.data.synthetic --out {root}` "
                f"(and `python -m benchmark.data.cityscapes_c --root {root}` for Cityscapes-C)"
                if preset_name != "paper" else
                "point --data-root at the real datasets (layouts in datasets/README.md)")
        raise FileNotFoundError(f"data root {root} not found; {hint}")
    return root


def build_train_dataset(config: dict[str, Any], data_root: Path):
    from benchmark.data.datasets import build_dataset

    d = config["data"]
    return build_dataset(config["source"], TRAIN_SPLIT[config["source"]], data_root, train=True,
                         crop_size=tuple(d["crop_size"]), base_scale=tuple(d["base_scale"]),
                         ratio_range=tuple(d["ratio_range"]), seed=config["seed"])


def build_job_model(job: Job) -> torch.nn.Module:
    """The job's model with seeded initialisation (identical on every rank and every resume)."""
    switches = dict(job.config["model"]["switches"])
    for key in ("crop_size", "mask_lambda", "mask_d_depths", "encoder_mask_stages", "mask_losses"):
        if isinstance(switches.get(key), list):
            switches[key] = tuple(switches[key])
    if switches.get("pretrained"):
        # the config names the file (hashed); the folder is a runtime detail
        path = default_path(job.config["runtime"].get("pretrained_dir"), "pretrained") / switches["pretrained"]
        if not path.is_file():
            raise FileNotFoundError(
                f"pretrained VMamba v0 weights {path} not found: download the official checkpoint "
                f"{switches['pretrained']} from the VMamba release into that folder, pass --pretrained-dir DIR, "
                f"or --pretrained-dir none to train from scratch")
        switches["pretrained"] = str(path)
    torch.manual_seed(engine.init_seed(job.seed))
    return models.build_model(job.model, job.size, **switches)


# ----------------------------------------------------------------------------- training

@dataclass
class Trained:
    model: torch.nn.Module      # unwrapped, on the device, eval-ready
    iterations: int
    train_seconds: float


def train_job(job: Job, data_root: Path, results_dir: str | os.PathLike, info: D.DistInfo,
              log=print) -> Trained:
    """Train `job` to its final iteration, resuming from its checkpoint; a no-op once `final.pt` exists."""
    ckdir = jobs.checkpoint_dir(results_dir, job.id)
    final = ckdir / "final.pt"
    last = ckdir / "last.pt"
    model = build_job_model(job)
    iterations = job.config["schedule"]["iterations"]
    if final.exists():
        ckpt = engine.load_checkpoint(final, expect_hash=job.hash)
        model.load_state_dict(ckpt["model"])
        if info.is_main:
            last.unlink(missing_ok=True)   # left behind when a run died between writing final.pt and this
        return Trained(model.to(info.device).eval(), int(ckpt["iteration"]), float(ckpt["train_seconds"]))

    o = job.config["optim"]
    s = job.config["schedule"]
    rt = job.config["runtime"]
    ddp_model = D.prepare_model(model, info)
    optimizer = engine.build_optimizer(D.unwrap(ddp_model), o["lr"], o["weight_decay"], o["betas"],
                                       o["mask_lr_mult"])
    start, seconds = 0, 0.0
    if last.exists():
        ckpt = engine.load_checkpoint(last, expect_hash=job.hash)
        D.unwrap(ddp_model).load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        engine.set_rng_state(ckpt["rng"])
        start, seconds = int(ckpt["iteration"]), float(ckpt["train_seconds"])
        if info.is_main:
            log(f"[{job.id}] resuming from {last} at iteration {start}/{iterations}")
    elif info.is_main:
        log(f"[{job.id}] training {iterations} iterations")
    dataset = build_train_dataset(job.config, data_root)
    spec = engine.TrainSpec(
        seed=job.seed, iterations=iterations, batch_size=s["batch_size"], batch_per_device=rt["batch_per_device"],
        lr=o["lr"], warmup_iters=s["warmup_iters"], warmup_ratio=s["warmup_ratio"], poly_power=s["poly_power"],
        min_lr=s["min_lr"], checkpoint_interval=rt["checkpoint_interval"], workers=rt["workers"],
        config_hash=job.hash, job_name=job.id)
    seconds = engine.train_loop(ddp_model, optimizer, dataset, spec, info, ckdir, start, seconds, log=log)
    D.sync_buffers(ddp_model, info)
    if info.is_main:
        engine.save_checkpoint(final, model=ddp_model, iteration=iterations, config_hash=job.hash,
                               train_seconds=seconds)
        last.unlink(missing_ok=True)   # final.pt supersedes it; the optimizer state is 3x the weights
    D.barrier(info)
    return Trained(D.unwrap(ddp_model).eval(), iterations, seconds)


# ----------------------------------------------------------------------------- CLI

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
    p.add_argument("--device", default=None, help="cpu|cuda (default: cuda when available)")


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Preset field overrides from the flags that were given."""
    out = {"size": args.size, "iterations": args.iters, "warmup_iters": args.warmup_iters,
           "batch_size": args.batch_size, "batch_per_device": args.batch_per_device,
           "crop_size": tuple(args.crop) if args.crop else None, "lr": args.lr,
           "eval_short_side": args.eval_short_side, "workers": args.workers,
           "checkpoint_interval": args.checkpoint_interval,
           "severities": tuple(args.severities) if args.severities else None,
           "scan_backend": args.scan_backend}
    if args.pretrained_dir is not None:
        out["pretrained_dir"] = (None if args.pretrained_dir.lower() == "none"
                                 else str(Path(args.pretrained_dir).expanduser().resolve()))
    return {k: v for k, v in out.items() if v is not None or k == "pretrained_dir"}


def preset_from_args(args: argparse.Namespace) -> Preset:
    return apply_overrides(get_preset(args.preset), overrides_from_args(args))


def add_job_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags naming one training job (model, source, seed, variant) plus the preset flags."""
    parser.add_argument("--model", default="maskvim", choices=models.list_models())
    parser.add_argument("--source", default="cityscapes", choices=list(DATASET_IDS), help="dataset trained on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", default="default", help="ablation variant name (benchmark.variants)")
    add_preset_arguments(parser)


def job_from_args(args: argparse.Namespace):
    """(preset, distributed info, data root, results dir, Job) from the flags of `add_job_arguments`."""
    preset = preset_from_args(args)
    info = D.init_from_env(args.device)
    data_root = check_data_root(default_path(args.data_root, preset.data_root), preset.name)
    results_dir = jobs.results_dir_of(args.results_dir)
    job = make_job(preset, model=args.model, source=args.source, seed=args.seed, variant=args.variant,
                   world_size=info.world_size, data_root=str(data_root))
    return preset, info, data_root, results_dir, job


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_job_arguments(parser)
    args = parser.parse_args(argv)
    try:
        _, info, data_root, results_dir, job = job_from_args(args)
        t = time.perf_counter()
        trained = train_job(job, data_root, results_dir, info)
        if info.is_main:
            print(f"[{job.id}] final checkpoint {final_checkpoint(results_dir, job)} "
                  f"(iteration {trained.iterations}, {time.perf_counter() - t:.1f} s this call)")
        D.shutdown(info)
    except (ValueError, FileNotFoundError, engine.CheckpointError, engine.NonFiniteLossError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
