"""Two DDP processes on CPU (gloo) train one job and end with identical weights."""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.multiprocessing as mp

from benchmark.presets import apply_overrides, get_preset


def _rank_main(rank: int, world: int, port: int, data_root: str, results_dir: str, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from benchmark import distributed as D
    from benchmark.jobs import make_job
    from benchmark.train import train_job

    info = D.init_from_env("cpu")
    try:
        # global batch 4 = 2 ranks x 2 images (the PPM's 1x1 BatchNorm needs 2 per device), no accumulation
        preset = apply_overrides(get_preset("test"), {"batch_size": 4, "batch_per_device": 2, "iterations": 3,
                                                      "checkpoint_interval": 2, "warmup_iters": 1})
        job = make_job(preset, model="maskvim", source="gtav", seed=0, world_size=world, data_root=data_root)
        trained = train_job(job, Path(data_root), results_dir, info, log=lambda s: None)
        torch.save({"state": trained.model.state_dict(), "config": job.to_dict(),
                    "is_sync": any("SyncBatchNorm" in type(m).__name__ for m in trained.model.modules())},
                   Path(out_dir) / f"rank{rank}.pt")
    finally:
        D.shutdown(info)


def test_two_gloo_ranks_end_with_identical_weights(synthetic_root, tmp_path, free_port):
    mp.spawn(_rank_main, args=(2, free_port, str(synthetic_root), str(tmp_path / "results"), str(tmp_path)),
             nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["state"].keys() == r1["state"].keys()
    for k in r0["state"]:
        assert torch.equal(r0["state"][k], r1["state"][k]), k
    assert not r0["is_sync"]                          # plain BatchNorm on CPU / gloo
    rt = r0["config"]["runtime"]
    assert rt["world_size"] == 2 and rt["grad_accumulation"] == 1 and r0["config"]["schedule"]["batch_size"] == 4
    finals = list((tmp_path / "results").glob("checkpoints/*/final.pt"))
    assert len(finals) == 1                           # rank 0 writes, once
