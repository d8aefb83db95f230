"""torch.distributed plumbing for `torchrun` (design §6): one process per device, rank 0 writes.

A plain `python -m benchmark.train` is a world of one and never touches torch.distributed.
Under torchrun (RANK / WORLD_SIZE / LOCAL_RANK in the environment) the process group is created
with NCCL on CUDA and gloo on CPU. SyncBatchNorm is used only on CUDA: gloo has no SyncBN kernel,
so CPU runs keep plain BatchNorm (whose statistics DDP broadcasts from rank 0 each step).
"""
from __future__ import annotations

import dataclasses
import datetime
import os

import torch
import torch.distributed as dist

from benchmark.errors import HarnessError


@dataclasses.dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_from_env(device: str | None = None) -> DistInfo:
    """Join the process group torchrun describes, or return a world of one.

    `device`: "cpu", "cuda" or None (CUDA when available). Under torchrun each rank takes
    cuda:LOCAL_RANK.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    want_cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    if want_cuda and not torch.cuda.is_available():
        raise HarnessError("--device cuda asked for, but torch sees no CUDA device: leave out --device "
                           "(CUDA when available) or pass --device cpu")
    if want_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if want_cuda else "gloo",
                                timeout=datetime.timedelta(minutes=30))
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def prepare_model(model: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    """Move to the device; under DDP convert BN to SyncBN (CUDA only) and wrap.

    find_unused_parameters: some ablation switches leave parameters out of the graph (e.g. masks
    whose loss is off still shape the forward, but a decoder variant may skip a branch).
    """
    model = model.to(info.device)
    if not info.enabled:
        return model
    if info.device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [info.local_rank] if info.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def sync_buffers(model: torch.nn.Module, info: DistInfo) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics).

    DDP broadcasts buffers at the start of each forward, so after the last step each rank holds its
    own statistics; evaluation (sharded over ranks) and the saved weights must all use rank 0's.
    """
    if not info.enabled:
        return
    for buf in unwrap(model).buffers():
        dist.broadcast(buf.data, src=0)


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum over ranks (in place); identity in a world of one."""
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t
