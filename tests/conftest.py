"""Shared fixtures: one tiny synthetic data root per test session, made by the real CLIs.

`synthetic_root` holds the five domains (a few 32x64 images each) written by
`python -m benchmark.data.synthetic`; `synthetic_root_c` adds its Cityscapes-C (all 16
corruptions, severity 5) written by `python -m benchmark.data.cityscapes_c`. Both are created
once per session and must be treated as read-only by tests. `make_inputs` builds selective-scan
inputs for the scan tests and the perf scan-timer test.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

from benchmark import numerics

# The test preset runs with portable numerics, which must be in the environment before torch, NumPy or
# OpenCV load (benchmark/numerics.py); subprocesses of the tests inherit it. A test subprocess that imports
# these helpers under another dispatch on purpose sets MASKVIM_TEST_NUMERICS=native.
numerics.apply(os.environ.get("MASKVIM_TEST_NUMERICS", "portable"))

import pytest  # noqa: E402
import torch  # noqa: E402

import benchmark.models  # noqa: F401  (registers every model family, as the harness does)

TINY_SIZE = (32, 64)        # (H, W) of the synthetic test images
TINY_TRAIN_IMAGES = 4
TINY_VAL_IMAGES = 6       # fewer miss classes the synthetic writer insists on


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    from benchmark.data.synthetic import main as synthetic_main

    out = tmp_path_factory.mktemp("synthetic")
    rc = synthetic_main(["--out", str(out), "--images", str(TINY_TRAIN_IMAGES), "--val-images", str(TINY_VAL_IMAGES),
                         "--size", str(TINY_SIZE[0]), str(TINY_SIZE[1]), "--workers", "1"])
    assert rc in (0, None), f"benchmark.data.synthetic failed with exit code {rc}"
    return out


@pytest.fixture(scope="session")
def synthetic_root_c(synthetic_root) -> Path:
    from benchmark.data.cityscapes_c import main as cityscapes_c_main

    rc = cityscapes_c_main(["--root", str(synthetic_root), "--severity", "5", "--workers", "1"])
    assert rc in (0, None), f"benchmark.data.cityscapes_c failed with exit code {rc}"
    return synthetic_root


@pytest.fixture()
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The one uninterrupted grid run the resume, grid and DDP tests compare against:
# `maskvim` on the `cityscapes` setting with the `test` preset (one job, five cells).
REFERENCE_GRID = dict(preset="test", models=["maskvim"], settings=["cityscapes"], seeds=[0])


@pytest.fixture(scope="session")
def reference_grid(synthetic_root, tmp_path_factory) -> Path:
    """Results dir of an uninterrupted `test`-preset grid run (read-only for tests)."""
    from benchmark.run import run_grid

    out = tmp_path_factory.mktemp("reference_grid")
    outcome = run_grid(**REFERENCE_GRID, data_root=synthetic_root, results_dir=out, log=lambda s: None)
    assert len(outcome["ran"]) == 1
    return out


@pytest.fixture(scope="module")
def one_thread():
    """Tiny-shape model tests: intra-op threads only add synchronisation (and spin badly on a shared CPU)."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def make_inputs(b, d, n, g, l, *, dtype=torch.float64, device="cpu", seed=0, with_D=True, with_bias=True,
                softplus=True):
    """Inputs in the ranges a trained SS2D produces: A < 0; delta > 0 when it is not softplus'ed."""
    gen = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    if softplus:
        delta, bias = 0.5 * r(b, d, l) - 1.0, 0.5 * r(d)
    else:
        delta = 0.05 + 0.5 * torch.rand(b, d, l, generator=gen, dtype=torch.float64)
        bias = 0.1 * torch.rand(d, generator=gen, dtype=torch.float64)
    A = -torch.exp(0.5 * r(d, n))
    xs = [r(b, d, l), delta, A, r(b, g, n, l), r(b, g, n, l), r(d) if with_D else None, bias if with_bias else None]
    return [None if t is None else t.to(device=device, dtype=dtype).requires_grad_() for t in xs]
