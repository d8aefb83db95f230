"""Performance benchmarks: `python -m benchmark.perf [--quick] [--json FILE] [--sections scan,model,corruptions]`.

Protocol: each section is a module `benchmark/perf/<section>.py` exposing `run(quick: bool) -> list[dict]`;
each row is a flat dict of names and numbers whose first key is "section". `__main__` imports the
sections lazily (a missing section, or one raising ImportError, is reported as unavailable), prints
each as an aligned table and writes every row, with the machine's description, to `--json` atomically.

Helpers shared by the sections: `best_of` (timing) and `machine_info` (the machine, the software and
the suite's commit, recorded with every run).
"""
from __future__ import annotations

import datetime
import os
import platform
import time
from typing import Callable

SECTIONS = ("scan", "model", "corruptions")


def best_of(fn: Callable[[], object], repeats: int, warmup: int = 1, sync: Callable[[], None] | None = None) -> float:
    """Seconds of the fastest of `repeats` calls of fn() after `warmup` untimed ones (best-of is the
    least disturbed by other load on the machine). `sync` (e.g. torch.cuda.synchronize) runs
    before each clock read."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(max(1, repeats)):
        if sync:
            sync()
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        best = min(best, time.perf_counter() - t0)
    return best


def machine_info(numerics_mode: str = "native") -> dict:
    import torch

    from benchmark.numerics import IDENTITY, cpu_model, identity
    from benchmark.results import git_commit

    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "cpu_cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "torch_cpu_capability": str(getattr(torch.backends.cpu, "get_cpu_capability", lambda: "unknown")()),
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "hostname": platform.node(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "git_commit": git_commit(),  # the code measured ("-dirty": with uncommitted changes)
        "numerics": identity(numerics_mode)[IDENTITY],
    }
    try:
        with open("/proc/loadavg", encoding="utf-8") as f:
            info["load_average_1min_at_start"] = float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return info
