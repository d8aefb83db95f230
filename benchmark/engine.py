"""The training and evaluation loops shared by every CLI (design §3 recipe).

Exact resume: what a training step sees is a pure function of (seed, iteration): the sampler
derives the images of every global batch slot (their augmentation is seeded by the dataset from
the index it is given), and the model's own randomness (drop path, dropout, Gumbel masks) is reseeded per micro-step. A checkpoint
therefore only needs model, optimizer, iteration and elapsed time; RNG states are stored too (as
tensors, so `torch.load(weights_only=True)` reads them) and restored, for anything that still
draws from the global generators. Killed-and-resumed equals uninterrupted, bit for bit, on CPU.
"""
from __future__ import annotations

import contextlib
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from benchmark import distributed as D
from benchmark.atomic import atomic_torch_save
from benchmark.data.classes import NUM_CLASSES
from benchmark.errors import CheckpointError, NonFiniteLossError  # noqa: F401  (raised here, caught by the CLIs)
from benchmark.metrics import confusion_matrix
from benchmark.spec import JobSpec

CHECKPOINT_VERSION = 1


# ----------------------------------------------------------------------------- seeds and data order

def derive_seed(*parts: int) -> int:
    """A 31-bit seed that depends on every part (numpy's SeedSequence mixing; stable across versions)."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1)[0] >> 1)


# Salts keep the streams of different purposes apart.
_SALT_ORDER, _SALT_MODEL, _SALT_INIT = 1, 3, 4


def init_seed(seed: int) -> int:
    """Seed for building the model: same initial weights on every rank and every resume."""
    return derive_seed(_SALT_INIT, seed)


class TrainSampler(Sampler):
    """Batches of dataset indices for one rank, a pure function of (seed, iteration).

    Global batch slot s = iteration * batch_size + k walks through one random permutation of the
    files per epoch. Micro-step a of rank r takes slots ((a * world_size + r) * per_device + j),
    so the images of an optimizer step are the same for any split of the global batch over ranks
    and accumulation steps. The index handed to the dataset is `epoch * len(dataset) + file`: the
    data contract (benchmark.data.datasets) reads file = index % len and seeds the item's
    augmentation from (seed, index), so every epoch sees fresh, reproducible crops.
    """

    def __init__(self, dataset_len: int, seed: int, batch_size: int, batch_per_device: int, world_size: int,
                 rank: int, start_iteration: int, iterations: int):
        if dataset_len < 1:
            raise ValueError("the training set is empty")
        self.n, self.seed = dataset_len, seed
        self.batch_size, self.per_device, self.world, self.rank = batch_size, batch_per_device, world_size, rank
        self.accum = batch_size // (batch_per_device * world_size)
        self.start, self.iterations = start_iteration, iterations
        self._epoch, self._perm = -1, None

    def _index(self, slot: int) -> int:
        epoch, pos = divmod(slot, self.n)
        if epoch != self._epoch:
            g = np.random.Generator(np.random.PCG64(derive_seed(_SALT_ORDER, self.seed, epoch)))
            self._epoch, self._perm = epoch, g.permutation(self.n)
        return epoch * self.n + int(self._perm[pos])

    def batch(self, iteration: int, micro: int) -> list[int]:
        first = iteration * self.batch_size + (micro * self.world + self.rank) * self.per_device
        return [self._index(s) for s in range(first, first + self.per_device)]

    def __iter__(self) -> Iterator[list[int]]:
        for it in range(self.start, self.iterations):
            for micro in range(self.accum):
                yield self.batch(it, micro)

    def __len__(self) -> int:
        return (self.iterations - self.start) * self.accum


# ----------------------------------------------------------------------------- optimizer and schedule

_NORM_TYPES = (torch.nn.modules.batchnorm._NormBase, torch.nn.LayerNorm, torch.nn.GroupNorm,
               torch.nn.LocalResponseNorm)


def param_groups(model: torch.nn.Module, weight_decay: float, mask_lr_mult: float) -> list[dict[str, Any]]:
    """AdamW groups of the recipe: no decay on norm layers and `_no_weight_decay` parameters; the
    `*mask_logits` parameters get `mask_lr_mult` times the learning rate. Each group carries its
    `lr_mult`, which `set_lr` applies."""
    groups: dict[tuple[bool, bool], dict[str, Any]] = {}
    seen: set[int] = set()
    for mod_name, module in model.named_modules():
        for p_name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            no_decay = isinstance(module, _NORM_TYPES) or bool(getattr(p, "_no_weight_decay", False))
            is_mask = full.endswith("mask_logits")
            key = (no_decay, is_mask)
            if key not in groups:
                groups[key] = {"params": [], "names": [], "weight_decay": 0.0 if no_decay else weight_decay,
                               "lr_mult": mask_lr_mult if is_mask else 1.0}
            groups[key]["params"].append(p)
            groups[key]["names"].append(full)
    # fixed order, so an optimizer state saved by one process loads into another
    return [groups[k] for k in sorted(groups)]


def build_optimizer(model: torch.nn.Module, lr: float, weight_decay: float, betas: Sequence[float],
                    mask_lr_mult: float) -> torch.optim.AdamW:
    groups = param_groups(model, weight_decay, mask_lr_mult)
    for g in groups:
        g.pop("names")
    opt = torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), weight_decay=weight_decay)
    for g in opt.param_groups:
        g["base_lr"] = lr
    return opt


def lr_at(iteration: int, base_lr: float, iterations: int, warmup_iters: int, warmup_ratio: float,
          power: float = 1.0, min_lr: float = 0.0) -> float:
    """mmseg's poly schedule with linear warmup (by iteration): the poly lr of `iteration`, scaled
    during warmup from `warmup_ratio` up to 1."""
    progress = min(iteration, iterations) / iterations
    lr = (base_lr - min_lr) * (1.0 - progress) ** power + min_lr
    if iteration < warmup_iters:
        lr *= 1.0 - (1.0 - iteration / warmup_iters) * (1.0 - warmup_ratio)
    return lr


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for g in optimizer.param_groups:
        g["lr"] = lr * g.get("lr_mult", 1.0)


# ----------------------------------------------------------------------------- RNG states and checkpoints

def rng_state() -> dict[str, Any]:
    """Global RNG states in a form torch.load(weights_only=True) accepts (tensors, numbers, lists)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(gauss)},
        "python": {"version": int(version), "state": torch.tensor(py_state, dtype=torch.int64),
                   "gauss": py_gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(x) for x in p["state"].tolist()), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_checkpoint(path: str | os.PathLike, expect_hash: str | None = None) -> dict[str, Any]:
    """Read a checkpoint written by this module; a clear error names the file when it is unusable."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, pickle garbage, disallowed globals ...
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(e).__name__}: {e}); "
                              f"delete it to restart this job from its previous checkpoint or from scratch") from e
    if not isinstance(ckpt, dict) or "model" not in ckpt or "iteration" not in ckpt:
        raise CheckpointError(f"{path}: not a benchmark checkpoint (no 'model' / 'iteration' entries)")
    if ckpt.get("version", CHECKPOINT_VERSION) != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ckpt.get('version')!r}, this code reads "
                              f"{CHECKPOINT_VERSION}; delete it to retrain the job")
    if expect_hash is not None and ckpt.get("config_hash") != expect_hash:
        raise CheckpointError(f"{path}: written for config {ckpt.get('config_hash')}, this job is {expect_hash}")
    return ckpt


def save_checkpoint(path: str | os.PathLike, *, model: torch.nn.Module, iteration: int, config_hash: str,
                    train_seconds: float, optimizer: torch.optim.Optimizer | None = None,
                    numeric_identity: Sequence[str] = ()) -> None:
    """Atomic: a reader (or a resume after SIGKILL) sees the previous file or this one, never half.
    `numeric_identity`: benchmark.numerics.identity_line of each process that trained it, in order."""
    ckpt: dict[str, Any] = {
        "version": CHECKPOINT_VERSION, "model": D.unwrap(model).state_dict(), "iteration": iteration,
        "config_hash": config_hash, "train_seconds": train_seconds, "numeric_identity": list(numeric_identity),
    }
    if optimizer is not None:
        ckpt["optimizer"] = optimizer.state_dict()
        ckpt["rng"] = rng_state()
    atomic_torch_save(path, ckpt)


# ----------------------------------------------------------------------------- training loop

def progress_enabled() -> bool:
    """A bar only on an interactive terminal (never in CI logs or redirected output)."""
    return sys.stderr.isatty() and not os.environ.get("CI")


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _to_float32(x: Any) -> Any:
    """Model outputs made under bf16 autocast, upcast so the losses are computed in float32."""
    if torch.is_tensor(x):
        return x.float() if x.is_floating_point() and x.dtype != torch.float32 else x
    if isinstance(x, dict):
        return {k: _to_float32(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_to_float32(v) for v in x)
    return x


def _collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"image": torch.stack([x["image"] for x in items]),
            "label": torch.stack([torch.as_tensor(x["label"]) for x in items]),
            "name": [x.get("name", "") for x in items]}


def train_loop(model: torch.nn.Module, optimizer: torch.optim.Optimizer, dataset: Dataset, job: JobSpec,
               info: D.DistInfo, checkpoint_dir: Path, start_iteration: int = 0, train_seconds: float = 0.0,
               log: Callable[[str], None] = print, numeric_identity: Sequence[str] = ()) -> float:
    """Train `job` (its schedule, optimizer lr and runtime) from `start_iteration` to its last iteration;
    returns the total training seconds.

    `model` is the (possibly DDP-wrapped) module on `info.device`. Every `checkpoint_interval`
    iterations rank 0 writes `checkpoint_dir/last.pt`. A non-finite loss on any rank stops every
    rank with NonFiniteLossError before the optimizer step, so `last.pt` stays the last good one.
    `numeric_identity` goes into every checkpoint (see save_checkpoint).
    """
    sched, rt = job.schedule, job.runtime
    iterations, name, config_hash = sched.iterations, job.id, job.hash
    accum = sched.batch_size // (rt.batch_per_device * info.world_size)
    sampler = TrainSampler(len(dataset), job.seed, sched.batch_size, rt.batch_per_device, info.world_size,
                           info.rank, start_iteration, iterations)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=rt.workers,
                        collate_fn=_collate, pin_memory=info.device.type == "cuda")
    batches = iter(loader)
    core = D.unwrap(model)
    model.train()
    bar = None
    if info.is_main and progress_enabled():
        from tqdm import tqdm
        bar = tqdm(total=iterations, initial=start_iteration, desc=name, dynamic_ncols=True)
    last_ckpt = checkpoint_dir / "last.pt"
    t0 = time.perf_counter()
    for it in range(start_iteration, iterations):
        set_lr(optimizer, lr_at(it, job.optim.lr, iterations, sched.warmup_iters, sched.warmup_ratio,
                                sched.poly_power, sched.min_lr))
        logged: dict[str, torch.Tensor] = {}           # this iteration's loss terms, on the device
        bad = torch.zeros((), device=info.device)      # micro-steps with a non-finite loss
        for micro in range(accum):
            batch = next(batches)
            images = batch["image"].to(info.device, non_blocking=True)
            labels = batch["label"].to(info.device, non_blocking=True)
            # model randomness (drop path, Gumbel masks) as a function of (seed, iteration, rank, micro-step)
            torch.manual_seed(derive_seed(_SALT_MODEL, job.seed, it, info.rank, micro))
            sync = micro == accum - 1 or not info.enabled
            with (contextlib.nullcontext() if sync else model.no_sync()):
                with _autocast(info.device):
                    outputs = model(images)
                losses = core.compute_loss(_to_float32(outputs), labels)
                loss = losses["loss"]
                bad = bad + (~torch.isfinite(loss.detach())).float()
                (loss / accum).backward()
            for k, v in losses.items():
                logged[k] = logged.get(k, 0.0) + v.detach().float() / accum
        # one host sync per optimizer step, before it: a non-finite loss on any rank stops every rank
        flag = D.all_reduce_sum(bad.reshape(1).clone(), info)
        if flag.item() > 0:
            where = f"{last_ckpt} (kept)" if last_ckpt.exists() else "none written yet"
            raise NonFiniteLossError(
                f"{name}: loss became {float(logged['loss']):g} at iteration {it + 1} (in "
                f"{int(bad.item())} of {accum} micro-step(s) here, {int(flag.item())} in all ranks); stopped before "
                f"the optimizer step. Last good checkpoint: {where}. Lower --lr or check the data.")
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        done = it + 1
        if bar is not None:
            bar.update(1)
        if done % max(1, iterations // 10) == 0 or done == iterations:
            # the loss terms reach the host only here: one all-reduce (mean over ranks) per log line
            names = list(logged)
            values = (D.all_reduce_sum(torch.stack([logged[k] for k in names]), info) / info.world_size).tolist()
            text = " ".join(f"{k}={v:.4f}" for k, v in zip(names, values))
            if bar is not None:
                bar.set_postfix_str(text)
            elif info.is_main:
                log(f"[{name}] iter {done}/{iterations} {text}")
        if done % rt.checkpoint_interval == 0 and done < iterations:
            elapsed = train_seconds + time.perf_counter() - t0
            if info.is_main:
                save_checkpoint(last_ckpt, model=model, optimizer=optimizer, iteration=done,
                                config_hash=config_hash, train_seconds=elapsed, numeric_identity=numeric_identity)
            D.barrier(info)
    if bar is not None:
        bar.close()
    return train_seconds + time.perf_counter() - t0


# ----------------------------------------------------------------------------- evaluation

@torch.no_grad()
def evaluate_confusion(model: torch.nn.Module, dataset: Dataset, info: D.DistInfo, workers: int = 0,
                       num_classes: int = NUM_CLASSES, desc: str = "eval") -> torch.Tensor:
    """Whole-image single-scale inference; logits resized to each label's original size (bilinear),
    argmax, one confusion matrix over the whole dataset (ranks take every world_size-th image and
    their matrices are summed)."""
    model.eval()
    indices = list(range(info.rank, len(dataset), info.world_size))
    loader = DataLoader(torch.utils.data.Subset(dataset, indices), batch_size=1, num_workers=workers,
                        collate_fn=_collate)
    cm = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    bar = None
    if info.is_main and progress_enabled():
        from tqdm import tqdm
        bar = tqdm(total=len(indices), desc=desc, leave=False, dynamic_ncols=True)
    for batch in loader:
        image = batch["image"].to(info.device)
        label = batch["label"][0]
        with _autocast(info.device):
            logits = model(image)
        logits = F.interpolate(logits.float(), size=tuple(label.shape[-2:]), mode="bilinear", align_corners=False)
        cm += confusion_matrix(logits.argmax(dim=1)[0], label.to(info.device), num_classes)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    if info.enabled:
        cm = D.all_reduce_sum(cm.to(info.device), info).cpu()
    return cm

