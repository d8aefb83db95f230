"""Reporting reads files only: benchmark.plots and benchmark.table import no torch, no model code and
no training / evaluation module, checked in a clean interpreter (this process has torch loaded already)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("torch", "maskvim", "baselines", "benchmark.engine", "benchmark.train", "benchmark.run",
             "benchmark.ablation", "benchmark.evaluate")
# The reports name, order and colour models through the registry (benchmark.models, docs/ARCHITECTURE.md);
# its registration modules import no torch and no model code, so they are the only maskvim / baselines
# modules a report may load: maskvim's registry and builder, and each baselines/<family>/__init__.py.
# The model code itself (maskvim.model, maskvim.encoder, baselines.vmamba.upernet, ...) stays out, like torch.
REGISTRATION = ("maskvim", "maskvim.registry", "maskvim.builder", "baselines")


def is_registration(module: str) -> bool:
    return module in REGISTRATION or (module.startswith("baselines.") and module.count(".") == 1)


def modules_after_import(module: str) -> list[str]:
    """sys.modules of a fresh interpreter (run in the repository root) after `import <module>`."""
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def forbidden_in(loaded: list[str]) -> list[str]:
    """The loaded modules that are, or lie inside, a FORBIDDEN one, registration modules excepted."""
    return [m for m in loaded
            if not is_registration(m) and any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]


def test_forbidden_in_spots_model_code_and_torch():
    assert forbidden_in(["benchmark.plots", "maskvim", "maskvim.registry", "maskvim.builder", "baselines",
                         "baselines.vmamba", "baselines.newfamily", "benchmark.runs_dir", "torchvision_like"]) == []
    assert forbidden_in(["torch", "torch.nn", "maskvim.model", "baselines.vmamba.upernet", "benchmark.run",
                         "benchmark.ablation", "benchmark.evaluate.x"]) == [
        "torch", "torch.nn", "maskvim.model", "baselines.vmamba.upernet", "benchmark.run", "benchmark.ablation",
        "benchmark.evaluate.x"]


@pytest.mark.parametrize("module", ["benchmark.plots", "benchmark.table"])
def test_reports_import_no_torch_model_or_training_code(module):
    loaded = modules_after_import(module)
    assert module in loaded
    assert forbidden_in(loaded) == []
