"""Training jobs and the results-dir layout: what a job is, its id, and where every file of a run lives.

A job is one training run (model, source, seed, variant): a ``benchmark.spec.JobSpec``, whose hash and
id name its checkpoints and result files. Torch-free: the reports read this module too.

    <results-dir>/runs/<cell>.json                 one result per cell (benchmark.results)
    <results-dir>/checkpoints/<job id>/last.pt     resumable; final.pt at the fixed last iteration
    <results-dir>/claims/<job id>.lock             --claim-jobs locks (benchmark.run)
    <results-dir>/complexity/<model>-<size>-<H>x<W>.json   params / GMACs (benchmark.complexity)
    <results-dir>/ablation/                        the ablation grid's own runs/, checkpoints/, masks/
    <results-dir>/ablation/masks/<job id>.json     learned-mask summaries (written by benchmark.ablation)

Defaults never depend on the cwd: a preset's relative path is taken from the repository root.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from benchmark.data.synthetic import manifest_digest
from benchmark.presets import Preset
from benchmark.spec import JobSpec
from benchmark.variants import get_variant, variant_model

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS_DIR = "results"
CHECKPOINTS_SUBDIR = "checkpoints"
CLAIMS_SUBDIR = "claims"
COMPLEXITY_SUBDIR = "complexity"
ABLATION_SUBDIR = "ablation"
MASKS_SUBDIR = "masks"


def default_path(given: str | os.PathLike | None, default: str) -> Path:
    """A flag's path as given (relative to the caller's cwd, like any CLI); a preset default is
    relative to the repository root, so defaults never depend on where the command is run."""
    if given is not None:
        return Path(given).expanduser().resolve()
    return (REPO_ROOT / default).resolve()


def results_dir_of(given: str | os.PathLike | None) -> Path:
    """--results-dir as given, else results/ in the repository."""
    return default_path(given, DEFAULT_RESULTS_DIR)


def checkpoint_dir(results_dir: str | os.PathLike, job_id: str) -> Path:
    return Path(results_dir) / CHECKPOINTS_SUBDIR / job_id


def final_checkpoint(results_dir: str | os.PathLike, job_id: str) -> Path:
    return checkpoint_dir(results_dir, job_id) / "final.pt"


def claims_dir(results_dir: str | os.PathLike) -> Path:
    return Path(results_dir) / CLAIMS_SUBDIR


def ablation_results_dir(results_dir: str | os.PathLike) -> Path:
    return Path(results_dir) / ABLATION_SUBDIR


def mask_summary_path(results_dir: str | os.PathLike, job_id: str) -> Path:
    """`results_dir` is the ablation folder (<results-dir>/ablation)."""
    return Path(results_dir) / MASKS_SUBDIR / f"{job_id}.json"


# The fields of a complexity record (design §2: `benchmark.complexity --format json`); a kept record adds the
# non-default `switches` it was counted with and the `code` fingerprint.
COMPLEXITY_RECORD_KEYS = ("model", "size", "input", "params", "gmacs", "gmacs_no_scan")


def complexity_path(results_dir: str | os.PathLike, model: str, size: str, input_hw) -> Path:
    h, w = input_hw
    return Path(results_dir) / COMPLEXITY_SUBDIR / f"{model}-{size}-{h}x{w}.json"


# ----------------------------------------------------------------------------- jobs

def variant_spec(variant: str, model: str | None) -> tuple[str, dict[str, Any]]:
    """(model, build_model switches) of a variant name; 'default' is the model with the paper's defaults."""
    if variant == "default":
        if model is None:
            raise ValueError("variant 'default' needs --model")
        return model, {}
    v = get_variant(variant)
    return variant_model(variant, model), v.build_kwargs()


def make_job(preset: Preset, *, model: str | None, source: str, seed: int, variant: str = "default",
             world_size: int = 1, data_root: str | None = None) -> JobSpec:
    """The job spec of (model or a variant's model, source, seed) under `preset`, for `world_size` processes."""
    model, switches = variant_spec(variant, model)
    return JobSpec.from_preset(preset, model=model, source=source, seed=seed, variant=variant, switches=switches,
                               world_size=world_size, data_root=data_root,
                               data_digest=manifest_digest(default_path(data_root, preset.data_root)))


def check_data_root(root: Path, preset_name: str) -> Path:
    if not root.is_dir():
        hint = (f"create the synthetic stand-ins with `python -m benchmark.data.synthetic --out {root}` "
                f"(and `python -m benchmark.data.cityscapes_c --root {root}` for Cityscapes-C)"
                if preset_name != "paper" else
                "point --data-root at the real datasets (layouts in datasets/README.md)")
        raise FileNotFoundError(f"data root {root} not found; {hint}")
    return root
