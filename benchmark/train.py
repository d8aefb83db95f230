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
from typing import Sequence

import torch

from benchmark import distributed as D
from benchmark import engine, jobs, models, numerics
from benchmark.cli import add_job_arguments, guarded, job_from_args
from benchmark.jobs import default_path
from benchmark.spec import JobSpec
from benchmark.settings import TRAIN_SPLIT


# ----------------------------------------------------------------------------- inputs

def build_train_dataset(job: JobSpec, data_root: Path):
    from benchmark.data.datasets import build_dataset

    d = job.data
    return build_dataset(job.source, TRAIN_SPLIT[job.source], data_root, train=True, crop_size=d.crop_size,
                         base_scale=d.base_scale, ratio_range=d.ratio_range, seed=job.seed)


def build_job_model(job: JobSpec) -> torch.nn.Module:
    """The job's model with seeded initialisation (identical on every rank and every resume)."""
    switches = job.model.kwargs()
    if switches.get("pretrained"):
        # the config names the file (hashed); the folder is a runtime detail
        path = default_path(job.runtime.pretrained_dir, "pretrained") / switches["pretrained"]
        if not path.is_file():
            raise FileNotFoundError(
                f"pretrained VMamba v0 weights {path} not found: download the official checkpoint "
                f"{switches['pretrained']} from the VMamba release into that folder, pass --pretrained-dir DIR, "
                f"or --pretrained-dir none to train from scratch")
        switches["pretrained"] = str(path)
    torch.manual_seed(engine.init_seed(job.seed))
    return models.build_model(job.model.name, job.size, **switches)


# ----------------------------------------------------------------------------- training

@dataclass
class Trained:
    model: torch.nn.Module      # unwrapped, on the device, eval-ready
    iterations: int
    train_seconds: float
    numeric_identity: tuple[str, ...] = ()   # identity lines of the processes that trained it (benchmark.numerics)


def trained_from(model: torch.nn.Module, ckpt: dict, info: D.DistInfo) -> Trained:
    """A Trained record of a model whose weights come from the final checkpoint `ckpt`."""
    model.load_state_dict(ckpt["model"])
    return Trained(model.to(info.device).eval(), int(ckpt["iteration"]), float(ckpt["train_seconds"]),
                   tuple(ckpt.get("numeric_identity") or ()))


def _identities(before: Sequence[str], resumed: bool, here: str) -> tuple[str, ...]:
    """The processes that trained a job so far: those of its checkpoint, then this one if it differs."""
    chain = list(before) or ([numerics.NOT_RECORDED] if resumed else [])
    return tuple(chain if chain and chain[-1] == here else [*chain, here])


def train_job(job: JobSpec, data_root: Path, results_dir: str | os.PathLike, info: D.DistInfo,
              log=print) -> Trained:
    """Train `job` to its final iteration, resuming from its checkpoint; a no-op once `final.pt` exists."""
    numerics.require(job.numerics)
    ckdir = jobs.checkpoint_dir(results_dir, job.id)
    final = ckdir / "final.pt"
    last = ckdir / "last.pt"
    model = build_job_model(job)
    iterations = job.schedule.iterations
    if final.exists():
        ckpt = engine.load_checkpoint(final, expect_hash=job.hash)
        if info.is_main:
            last.unlink(missing_ok=True)   # left behind when a run died between writing final.pt and this
        return trained_from(model, ckpt, info)

    o = job.optim
    ddp_model = D.prepare_model(model, info)
    optimizer = engine.build_optimizer(D.unwrap(ddp_model), o.lr, o.weight_decay, o.betas, o.mask_lr_mult)
    start, seconds, before = 0, 0.0, []
    if last.exists():
        ckpt = engine.load_checkpoint(last, expect_hash=job.hash)
        D.unwrap(ddp_model).load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        engine.set_rng_state(ckpt["rng"])
        start, seconds = int(ckpt["iteration"]), float(ckpt["train_seconds"])
        before = list(ckpt.get("numeric_identity") or [])
        if info.is_main:
            log(f"[{job.id}] resuming from {last} at iteration {start}/{iterations}")
    elif info.is_main:
        log(f"[{job.id}] training {iterations} iterations")
    identities = _identities(before, start > 0, numerics.identity(job.numerics)[numerics.IDENTITY])
    dataset = build_train_dataset(job, data_root)
    seconds = engine.train_loop(ddp_model, optimizer, dataset, job, info, ckdir, start, seconds, log=log,
                                numeric_identity=identities)
    D.sync_buffers(ddp_model, info)
    if info.is_main:
        engine.save_checkpoint(final, model=ddp_model, iteration=iterations, config_hash=job.hash,
                               train_seconds=seconds, numeric_identity=identities)
        last.unlink(missing_ok=True)   # final.pt supersedes it; the optimizer state is 3x the weights
    D.barrier(info)
    return Trained(D.unwrap(ddp_model).eval(), iterations, seconds, identities)


@guarded
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_job_arguments(parser)
    args = parser.parse_args(argv)
    _, info, data_root, results_dir, job = job_from_args(args, program=argv is None)
    t = time.perf_counter()
    trained = train_job(job, data_root, results_dir, info)
    if info.is_main:
        print(f"[{job.id}] final checkpoint {jobs.final_checkpoint(results_dir, job.id)} "
              f"(iteration {trained.iterations}, {time.perf_counter() - t:.1f} s this call)")
    D.shutdown(info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
