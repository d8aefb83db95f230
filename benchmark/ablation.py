"""The ablation grid: the paper's Tables 6-8 and Figures 5-6 with one command.

    python -m benchmark.ablation --all                       # smoke preset, everything
    python -m benchmark.ablation --table 7 --preset paper --data-root /data --seeds 0 1 2 --shard 2/4
    python -m benchmark.ablation --all --dry-run             # list the distinct trainings

Which cells: Tab. 6-8 and Fig. 5 in the Cityscapes-to-others setting (the paper's ablation columns
are B, M, G, S and its default row is Tab. 3's MaskViM row); Fig. 6 (with vs without mask) in the
Cityscapes and GTAV settings. Every row names a variant (benchmark.variants); identical configs
share one training cell (the default is trained once for every table and figure that shows it).
Cells run through benchmark.run.run_grid with the preset's `ablation` overrides (a reduced budget
on the smoke preset) and write to <results-dir>/ablation/, so they never mix with main-grid cells.
Only missing cells run; a started job resumes from its checkpoint. Each job is evaluated on its
source's val split and the setting's four targets (no Cityscapes-C). `--all` is 31 trainings per
seed (29 Cityscapes-trained for 34 table rows and figure points, 2 GTAV-trained for Fig. 6 (b));
`--dry-run` lists them. On the smoke preset the preset's `ablation` override (200 iterations) sets their
budget, so that run_all.sh, main grid included, ends within 30 minutes on 2 CPU cores.

After training, `--figure 5` (and `--all`) summarises the learned masks of each MaskViM default job into
<results-dir>/ablation/masks/<job id>.json (kept fraction per block at inference, and its spread
over Gumbel samples drawn as in training); Fig. 5 (b) and the mask overlays of benchmark.plots are
drawn from these files (benchmark.masks reads them) and never from checkpoints.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Sequence

from benchmark import jobs, paper
from benchmark.atomic import atomic_write_json
from benchmark.cli import add_numerics_argument, guarded
from benchmark.numerics import enter as enter_numerics
from benchmark.variants import EXTRA_TABLE_ROWS, FIGURE_VARIANTS, distinct_cells
from maskvim.sites import MaskSite

FIGURES = (5, 6)
MASK_SAMPLES = 64          # Gumbel samples per mask for the spread of the kept fraction
MASK_SUMMARY_VERSION = 1


def variants_for(tables: Iterable[int] = (), figures: Iterable[int] = ()) -> dict[str, list[str]]:
    """setting -> the variant names its rows need (with repeats: dedupe with `cells_for`)."""
    need: dict[str, list[str]] = defaultdict(list)
    for t in tables:
        if t not in paper.ABLATION_TABLES:
            raise ValueError(f"--table {t}: ablation tables are {', '.join(map(str, paper.ABLATION_TABLES))}")
        need[paper.ABLATION_SETTING] += list(paper.load_paper_table(t)["variant"])
        need[paper.ABLATION_SETTING] += list(EXTRA_TABLE_ROWS.get(t, ()))
    for f in figures:
        if f not in FIGURES:
            raise ValueError(f"--figure {f}: ablation figures are {', '.join(map(str, FIGURES))}")
        for setting in (paper.FIGURE6_SETTINGS if f == 6 else (paper.ABLATION_SETTING,)):
            need[setting] += list(FIGURE_VARIANTS[f])
    return dict(need)


def cells_for(tables: Iterable[int] = (), figures: Iterable[int] = ()) -> dict[str, list[tuple[str, str]]]:
    """setting -> distinct (model, cell variant) training cells, in first-seen order."""
    return {s: distinct_cells(names) for s, names in variants_for(tables, figures).items()}


def grid_calls(cells: dict[str, list[tuple[str, str]]]) -> list[dict[str, Any]]:
    """run_grid keyword arguments per setting: `default` cells by model, named cells by variant."""
    calls = []
    for setting, pairs in cells.items():
        default_models = [m for m, v in pairs if v == "default"]
        named = [v for _, v in pairs if v != "default"]
        variants = (["default"] if default_models else []) + named
        # run_grid crosses `models` with the default variant only; named variants bring their own
        calls.append({"settings": [setting], "variants": variants, "models": default_models or None})
    return calls


def run_ablation(preset: str, *, tables: Sequence[int] = (), figures: Sequence[int] = (),
                 seeds: Sequence[int] = (0,), data_root: str | None = None, results_dir: str | None = None,
                 shard: str | None = None, claim_jobs: bool = False, numerics: str | None = None,
                 log=print) -> dict[str, list[str]]:
    """Run the missing cells of the requested tables / figures; returns run_grid's outcome, merged.
    `numerics` overrides the preset's mode (benchmark.numerics)."""
    from benchmark.presets import get_preset
    from benchmark.run import run_grid

    p = get_preset(preset)
    overrides = {**dict(p.ablation), **({"numerics": numerics} if numerics is not None else {})}
    out_dir = jobs.ablation_results_dir(jobs.results_dir_of(results_dir))
    cells = cells_for(tables, figures)
    outcome: dict[str, list[str]] = {"skipped": [], "ran": []}
    for call in grid_calls(cells):
        got = run_grid(p, seeds=list(seeds), data_root=data_root, results_dir=out_dir, shard=shard,
                       overrides=overrides, log=log, claim_jobs=claim_jobs, **call)
        for k, v in got.items():
            outcome.setdefault(k, []).extend(v)
    if 5 in figures:
        written = write_mask_summaries(out_dir, log=log)
        if written:
            log(f"[ablation] mask summaries: {', '.join(str(w) for w in written)}")
    return outcome


# ------------------------------------------------------------------------------ mask summaries
def summarize_masks(model, samples: int = MASK_SAMPLES, seed: int = 0) -> list[dict[str, Any]]:
    """Per learned mask: location (`where`, the string form of its MaskSite, with its `part` and
    `stage`), grid [h, w], kept fraction at inference, the kept fraction of each of `samples` Gumbel
    draws as training makes them, and the keep margin (keep logit minus drop logit, (h, w) nested
    lists) on the mask's own token grid. The model resizes both logits bilinearly to the current grid, and
    a bilinear resize is linear, so resizing the margin and thresholding at 0 gives the mask eval
    applies at any resolution (what the overlays draw)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    out = []
    for where, tm in model.token_masks():
        site = MaskSite.parse(where)
        h, w = tm.grid_size
        logits = tm.logits_at(h, w).detach().float().cpu()
        margin = (logits[:, 0] - logits[:, 1]).reshape(h, w)
        keep = tm.inference_mask(h, w).cpu()
        sampled = tm.sample_masks(h, w, samples, generator=gen).float().mean(dim=(1, 2)).cpu()
        out.append({"where": str(site), "part": site.part, "stage": site.stage, "grid": [h, w],
                    "inference_kept": float(keep.float().mean()),
                    "sample_kept": [round(float(x), 6) for x in sampled],
                    "keep_margin": [[round(float(x), 4) for x in row] for row in margin]})
    return out


def write_mask_summary(results_dir: str | Path, result) -> Path | None:
    """Summarise the learned masks of the job behind `result` (a RunResult) from its final checkpoint
    under `results_dir` (the ablation folder) into masks/<job id>.json there; an existing summary is kept.

    Returns the summary's path, or None when that job has no checkpoint here (e.g. results copied
    without checkpoints) or its model has no masks.
    """
    import torch

    from benchmark import engine
    from benchmark.spec import JobSpec
    from benchmark.train import build_job_model

    job = JobSpec.from_dict(result.config, where=f"config of the {result.model} {result.variant} {result.source} "
                                                 f"seed {result.seed} result")
    path = jobs.mask_summary_path(results_dir, job.id)
    if path.exists():
        return path
    ckpt_path = jobs.final_checkpoint(results_dir, job.id)
    if not ckpt_path.exists():
        return None
    ckpt = engine.load_checkpoint(ckpt_path, expect_hash=job.hash)
    with torch.no_grad():
        model = build_job_model(job)
        model.load_state_dict(ckpt["model"])
        model.eval()
        blocks = summarize_masks(model)
    if not blocks:
        return None
    atomic_write_json(path, {
        "version": MASK_SUMMARY_VERSION, "job_id": job.id, "model": job.model.name, "size": job.size,
        "variant": job.variant, "source": job.source, "seed": job.seed, "config_hash": job.hash,
        "mask_form": job.model.switches.get("mask_form", "authors"),
        "crop_size": list(job.data.crop_size), "eval_short_side": job.eval.short_side,
        "data_root": job.runtime.data_root, "iteration": int(ckpt["iteration"]),
        "samples": MASK_SAMPLES, "blocks": blocks})
    return path


def write_mask_summaries(results_dir: str | Path, *, variant: str = "default", log=print) -> list[Path]:
    """Mask summaries of every MaskViM job of `variant` found under results_dir (the ablation folder);
    returns the paths of those written or already there (jobs without a final checkpoint are logged)."""
    from benchmark.results import load_results

    seen: set[tuple[str, int, str]] = set()
    written: list[Path] = []
    for r in load_results(results_dir):
        key = (r.source, r.seed, r.config_hash)
        if r.model != "maskvim" or r.variant != variant or key in seen:
            continue
        seen.add(key)
        path = write_mask_summary(results_dir, r)
        if path is not None:
            written.append(path)
        else:
            log(f"[ablation] no final checkpoint for {r.model} {r.variant} {r.source} seed {r.seed} "
                f"under {results_dir}: no mask summary")
    return written


# ------------------------------------------------------------------------------------------ CLI
@guarded
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmark.ablation", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--table", type=int, nargs="+", choices=paper.ABLATION_TABLES, help="paper Table 6, 7, 8")
    what.add_argument("--figure", type=int, nargs="+", choices=FIGURES, help="paper Figure 5, 6")
    what.add_argument("--all", action="store_true", help="every ablation table and figure")
    ap.add_argument("--preset", default="smoke", help="test | smoke | paper (default smoke)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="default: 0")
    ap.add_argument("--data-root", default=None, help="default: the preset's data root")
    ap.add_argument("--results-dir", default=None,
                    help="main results folder (default results/); ablation cells go to <it>/ablation/")
    ap.add_argument("--shard", default=None, help="i/n: run only every n-th job from i (scheduler job arrays)")
    ap.add_argument("--claim-jobs", action="store_true",
                    help="share the cells with other processes started with the same flags (see benchmark.run)")
    ap.add_argument("--dry-run", action="store_true", help="list the distinct training cells and exit")
    add_numerics_argument(ap)
    args = ap.parse_args(argv)
    tables = list(paper.ABLATION_TABLES) if args.all else (args.table or [])
    figures = list(FIGURES) if args.all else (args.figure or [])
    if args.dry_run:
        cells = cells_for(tables, figures)
        total = 0
        for setting, pairs in cells.items():
            print(f"{setting}: {len(pairs)} trainings per seed")
            for model, variant in pairs:
                print(f"  {model:15s} {variant}")
            total += len(pairs)
        print(f"total: {total} trainings x {len(set(args.seeds))} seed(s)")
        return 0
    from benchmark.presets import get_preset

    enter_numerics(args.numerics or get_preset(args.preset).numerics, program=argv is None)
    run_ablation(args.preset, tables=tables, figures=figures, seeds=args.seeds, data_root=args.data_root,
                 results_dir=args.results_dir, shard=args.shard, claim_jobs=args.claim_jobs,
                 numerics=args.numerics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
