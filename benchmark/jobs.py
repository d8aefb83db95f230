"""The results-dir layout: where every file of a run lives (torch-free, read by the reports too).

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


def complexity_path(results_dir: str | os.PathLike, model: str, size: str, input_hw) -> Path:
    h, w = input_hw
    return Path(results_dir) / COMPLEXITY_SUBDIR / f"{model}-{size}-{h}x{w}.json"
