"""The mask summary files (torch-free: the reports read this module).

Each summarised mask is named by its `maskvim.sites.MaskSite` (stored as `where`). The summaries
(<results-dir>/ablation/masks/<job id>.json, layout in docs/ARCHITECTURE.md) are written by
benchmark.ablation from final checkpoints; `load_mask_summaries` reads them.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from benchmark.jobs import MASKS_SUBDIR


def load_mask_summaries(results_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Every mask summary under `results_dir` (the ablation folder, <results-dir>/ablation) in file-name
    order, each as the dict its JSON file holds; [] when there is no masks/ folder. A file that is not valid
    JSON is a ValueError naming it."""
    folder = Path(results_dir) / MASKS_SUBDIR
    out = []
    for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            out.append(json.loads(p.read_text(encoding="utf-8")))
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}: not valid JSON ({e}); delete it to recompute") from e
    return out
