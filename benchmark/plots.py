"""Figures from result files (PNG + PDF): `python -m benchmark.plots --results-dir results`.

Made when the results support them (the rest are listed as skipped, with the reason):
- `cityscapes_c_bars`: per-corruption mIoU (Tab. 2) of our models beside the paper's MaskViM-T and
  HGFormer-T rows.
- `setting_<gta|cityscapes|mapillary>`: grouped bars per setting: our models per target (+ Average,
  in-domain) beside the paper's MaskViM row.
- `fig5a`: mIoU (average over the four targets) vs uniform lambda. The paper's Fig. 5 (a) has no
  numbers in its text; its two printed values at lambda 0.5 (53.0 default row, 44.4 Tab. 7 uniform
  row) are marked for reference.
- `fig5b`: kept fraction per encoder stage of MaskViM's learned masks (inference mask), with its
  spread over Gumbel samples drawn as in training.
- `fig6a` / `fig6b`: with vs without mask, Cityscapes- and GTAV-to-others.
- `mask_overlay`: the learned per-stage encoder masks over a few of the source's val images.
Ours are mean ± std over seeds (error bars). Main-grid results come from <results-dir>/runs, the
ablation's from <results-dir>/ablation/runs, the masks from the summaries in <results-dir>/ablation/masks
that `python -m benchmark.ablation --figure 5` writes from the final checkpoints.

Reads files only: no torch, no model code, no training or evaluation modules are imported
(tests/test_report_imports.py checks it).
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from benchmark import models, paper  # noqa: E402
from benchmark.atomic import atomic_path  # noqa: E402
from benchmark.data.layouts import LayoutError, list_samples, read_image  # noqa: E402
from benchmark.data.transforms import resize_short_side  # noqa: E402
from benchmark.cli import guarded  # noqa: E402
from benchmark.jobs import ablation_results_dir, results_dir_of  # noqa: E402
from benchmark.masks import load_mask_summaries  # noqa: E402
from benchmark.results import RunResult, load_results  # noqa: E402
from benchmark.table import SETTING_SOURCE, TARGET_NAMES  # noqa: E402
from benchmark.variants import FIGURE_VARIANTS, cell_of, get_variant  # noqa: E402

FORMATS = ("png", "pdf")
MASKVIM_COLOR = models.model_color("maskvim")
MASK_SUMMARY_HINT = "run `python -m benchmark.ablation --figure 5`, which writes them from the final checkpoints"
PAPER_COLORS = {"MaskViM": "#f1948a", "HGFormer": "#85c1e9"}


class Skip(Exception):
    """A figure the results do not support; the message says why."""


# ----------------------------------------------------------------------------------- helpers
def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    if not values:
        return math.nan, 0.0
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _seed_values(results: Sequence[RunResult], target: str) -> list[float]:
    return [r.miou for r in results if r.target == target]


def _seed_averages(results: Sequence[RunResult], targets: Sequence[str]) -> list[float]:
    by_seed: dict[int, dict[str, float]] = defaultdict(dict)
    for r in results:
        by_seed[r.seed][r.target] = r.miou
    return [statistics.fmean(v[t] for t in targets) for v in by_seed.values() if all(t in v for t in targets)]


def _grouped_bars(ax, groups: Sequence[str], series: list[tuple[str, list[tuple[float, float]], dict]]) -> None:
    """series: (label, [(mean, std) per group], bar kwargs); NaN means: no bar."""
    n = max(len(series), 1)
    width = 0.8 / n
    x = np.arange(len(groups))
    for k, (label, values, style) in enumerate(series):
        means = np.array([v[0] for v in values], dtype=float)
        stds = np.array([v[1] for v in values], dtype=float)
        errors = np.where(np.isnan(means), 0, stds)
        ax.bar(x + (k - (n - 1) / 2) * width, np.nan_to_num(means), width,
               yerr=errors if errors.any() else None, label=label, capsize=2, **style)
    ax.set_xticks(x)
    ax.set_xticklabels(groups, rotation=30 if len(groups) > 6 else 0, ha="right" if len(groups) > 6 else "center")
    ax.set_ylabel("mIoU (%)")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(fontsize=8, ncol=min(n, 3), loc="upper center", bbox_to_anchor=(0.5, -0.18 if len(groups) > 6 else -0.14),
              frameon=False)


def _describe(results: Sequence[RunResult]) -> str:
    presets = sorted({str(r.config.get("preset")) for r in results})
    sizes = sorted({r.size for r in results})
    seeds = sorted({r.seed for r in results})
    scratch = any(p in ("test", "smoke") for p in presets)
    return (f"ours: preset {', '.join(presets)}, size {', '.join(sizes)}, seeds {', '.join(map(str, seeds))}"
            + (" (trained from scratch on synthetic data)" if scratch else ""))


def _by_model(results: Sequence[RunResult], setting: str, variant: str = "default") -> dict[str, list[RunResult]]:
    out: dict[str, list[RunResult]] = defaultdict(list)
    for r in results:
        if r.setting == setting and r.variant == variant:
            out[r.model].append(r)
    return {m: out[m] for m in sorted(out, key=models.model_order)}


# ----------------------------------------------------------------------------------- figures
def fig_cityscapes_c(results: Sequence[RunResult], severity: int = 5):
    corruptions = paper.target_columns(2)
    by_model = _by_model(results, "cityscapes-c")
    targets = [f"cityscapes_c/{c}/{severity}" for c in corruptions]
    if not any(r.target in targets for rs in by_model.values() for r in rs):
        raise Skip(f"no Cityscapes-C results at severity {severity} in runs/")
    groups = [TARGET_NAMES[c] for c in corruptions] + ["Average"]
    series = []
    p2 = paper.load_paper_table(2)
    for method in ("HGFormer", "MaskViM"):
        row = p2[p2["method"] == method].iloc[0]
        series.append((f"paper {row['row_label'].split(' (')[0]}",
                       [(float(row[c]), 0.0) for c in corruptions] + [(float(row["average"]), 0.0)],
                       {"color": PAPER_COLORS[method], "hatch": "//", "edgecolor": "white"}))
    used = []
    for model, rs in by_model.items():
        vals = [_mean_std(_seed_values(rs, t)) for t in targets] + [_mean_std(_seed_averages(rs, targets))]
        series.append((f"{models.display_name(model)} ({rs[0].size}, ours)", vals,
                       {"color": models.model_color(model)}))
        used += rs
    fig, ax = plt.subplots(figsize=(13, 4.2))
    _grouped_bars(ax, groups, series)
    ax.set_title(f"Cityscapes-C, severity {severity} (paper Tab. 2)\n{_describe(used)}", fontsize=9)
    return fig


def fig_setting(results: Sequence[RunResult], setting: str):
    table_no = paper.SETTING_TABLES[setting]
    targets = paper.target_columns(table_no)
    source = SETTING_SOURCE[setting]
    by_model = _by_model(results, setting)
    if not by_model:
        raise Skip(f"no {setting} results in runs/")
    groups = [TARGET_NAMES[t] for t in targets] + ["Average", f"In-domain\n({TARGET_NAMES[source]})"]
    p = paper.load_paper_table(table_no)
    row = p[p["method"] == "MaskViM"].iloc[0]
    series = [("paper MaskViM-T", [(float(row[t]), 0.0) for t in targets] + [(float(row["average"]), 0.0),
                                                                             (math.nan, 0.0)],
               {"color": PAPER_COLORS["MaskViM"], "hatch": "//", "edgecolor": "white"})]
    used = []
    for model, rs in by_model.items():
        vals = ([_mean_std(_seed_values(rs, t)) for t in targets] + [_mean_std(_seed_averages(rs, targets))]
                + [_mean_std(_seed_values(rs, source))])
        series.append((f"{models.display_name(model)} ({rs[0].size}, ours)", vals,
                       {"color": models.model_color(model)}))
        used += rs
    fig, ax = plt.subplots(figsize=(8, 4))
    _grouped_bars(ax, groups, series)
    title = {"gta": "GTAV", "cityscapes": "Cityscapes", "mapillary": "Mapillary"}[setting]
    ax.set_title(f"{title}-to-others (paper Tab. {table_no})\n{_describe(used)}", fontsize=9)
    return fig


def fig5a(ablation: Sequence[RunResult]):
    setting = paper.ABLATION_SETTING
    targets = paper.target_columns(6)
    points = []
    for name in FIGURE_VARIANTS[5]:
        lam = float(get_variant(name).switches["mask_lambda"])
        model, cell = cell_of(name)
        rs = [r for r in ablation if r.setting == setting and r.model == model and r.variant == cell]
        avgs = _seed_averages(rs, targets)
        if avgs:
            points.append((lam, *_mean_std(avgs), rs))
    if len(points) < 2:
        raise Skip("fewer than two uniform-lambda cells in ablation/runs/ (run `benchmark.ablation --figure 5`)")
    fig, ax = plt.subplots(figsize=(5.5, 4))
    lam, mean, std = (np.array([p[i] for p in points]) for i in range(3))
    ax.errorbar(lam, mean, yerr=std, marker="o", color=MASKVIM_COLOR, capsize=3, label="MaskViM (ours)")
    t7 = paper.load_paper_table(7).set_index("variant")
    ax.scatter([0.5], [t7.loc["default", "average"]], marker="*", s=120, color="black",
               label=f"paper λ=0.5, default row ({t7.loc['default', 'average']:.1f})")
    ax.scatter([0.5], [t7.loc["lambda_stage_0.5_0.5_0.5", "average"]], marker="x", s=60, color="black",
               label=f"paper Tab. 7 (0.5, 0.5, 0.5) row ({t7.loc['lambda_stage_0.5_0.5_0.5', 'average']:.1f})")
    ax.set_xlabel("uniform λ (target kept fraction)")
    ax.set_ylabel("mIoU (%), average of B, M, G, S")
    ax.set_xticks(lam)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False)
    ax.set_title("Fig. 5 (a): Cityscapes-to-others vs uniform λ\n(paper curve not given in its text)\n"
                 + _describe([r for p in points for r in p[3]]), fontsize=8)
    return fig


def _encoder_stage_fractions(summaries: Sequence[dict]) -> dict[int, tuple[list[float], list[float]]]:
    """stage -> (inference kept fraction per job, stage-level kept fraction per Gumbel sample over jobs)."""
    out: dict[int, tuple[list[float], list[float]]] = {}
    for s in summaries:
        stages: dict[int, list[dict]] = defaultdict(list)
        for b in s["blocks"]:
            if b["part"] == "encoder":
                stages[b["stage"]].append(b)
        for stage, blocks in stages.items():
            inf, samp = out.setdefault(stage, ([], []))
            inf.append(statistics.fmean(b["inference_kept"] for b in blocks))
            samp += [statistics.fmean(vals) for vals in zip(*(b["sample_kept"] for b in blocks))]
    return dict(sorted(out.items()))


def _default_summaries(ablation_dir: Path) -> list[dict]:
    """The mask summaries under ablation_dir of default jobs trained on the ablation setting's source."""
    return [s for s in load_mask_summaries(ablation_dir)
            if s["variant"] == "default" and s["source"] == SETTING_SOURCE[paper.ABLATION_SETTING]]


def fig5b(summaries: Sequence[dict]):
    stages = _encoder_stage_fractions(summaries)
    if not stages:
        raise Skip(f"no mask summary of a MaskViM default job in ablation/masks/ ({MASK_SUMMARY_HINT})")
    fig, ax = plt.subplots(figsize=(5, 4))
    x = np.arange(len(stages))
    inf = [statistics.fmean(v[0]) for v in stages.values()]
    ax.bar(x, inf, 0.5, color=MASKVIM_COLOR, alpha=0.8, label="inference mask (argmax)")
    parts = ax.violinplot([v[1] for v in stages.values()], positions=x, widths=0.35, showmeans=True)
    for body in parts["bodies"]:
        body.set_facecolor("#333333")
        body.set_alpha(0.35)
    ax.axhline(0.5, ls="--", color="black", lw=1, label="λ = 0.5 (target)")
    ax.set_xticks(x)
    ax.set_xticklabels([f"Stage {s}" for s in stages])
    ax.set_ylim(0, 1)
    ax.set_ylabel("kept fraction of tokens")
    ax.legend(fontsize=7, loc="upper right")
    n_samples = len(next(iter(stages.values()))[1])
    ax.set_title(f"Fig. 5 (b): learned encoder masks, λ = 0.5\nviolins: {n_samples} training-time Gumbel samples "
                 f"({len(summaries)} job(s), iteration {summaries[0]['iteration']}, {summaries[0]['size']})",
                 fontsize=8)
    return fig


def fig6(ablation: Sequence[RunResult], setting: str):
    table_no = paper.SETTING_TABLES[setting]
    targets = paper.target_columns(table_no)
    series, used = [], []
    for name, label, color in (("without_mask", "without mask", "#7d8c8d"),
                               ("default", "with mask (MaskViM)", MASKVIM_COLOR)):
        model, cell = cell_of(name)
        rs = [r for r in ablation if r.setting == setting and r.model == model and r.variant == cell]
        if not rs:
            raise Skip(f"no '{cell}' {setting} cells in ablation/runs/ (run `benchmark.ablation --figure 6`)")
        vals = [_mean_std(_seed_values(rs, t)) for t in targets] + [_mean_std(_seed_averages(rs, targets))]
        series.append((label, vals, {"color": color}))
        used += rs
    fig, ax = plt.subplots(figsize=(6.5, 4))
    _grouped_bars(ax, [TARGET_NAMES[t] for t in targets] + ["Average"], series)
    panel = "a" if setting == "cityscapes" else "b"
    title = "Cityscapes" if setting == "cityscapes" else "GTAV"
    ax.set_title(f"Fig. 6 ({panel}): {title}-to-others with vs without mask\n{_describe(used)}", fontsize=8)
    return fig


def resize_bilinear(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w) float grid -> float64 (height, width), bilinear with half-pixel centres: the values of
    torch.nn.functional.interpolate(mode="bilinear", align_corners=False), which the model uses to
    resize its mask logits to a token grid (no antialiasing when shrinking, edges clamped)."""
    grid = np.asarray(grid, dtype=np.float64)

    def taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
        lo = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        return lo, np.minimum(lo + 1, n_in - 1), src - lo

    y0, y1, fy = taps(grid.shape[0], height)
    x0, x1, fx = taps(grid.shape[1], width)
    rows = grid[y0] * (1.0 - fy)[:, None] + grid[y1] * fy[:, None]
    return rows[:, x0] * (1.0 - fx) + rows[:, x1] * fx


def _eval_images(source: str, root: Path, short_side: int, count: int) -> list[np.ndarray]:
    """Up to `count` val images of `source`, evenly spaced over the split, as RGB uint8 (H, W, 3) resized
    to `short_side` as evaluation resizes them (benchmark.data.transforms.resize_short_side)."""
    try:
        samples = list_samples(root, source, "val")
    except LayoutError as e:
        raise Skip(f"no {source} val images under {root}: {e}") from None
    count = min(count, len(samples))
    step = max(1, len(samples) // count)
    return [resize_short_side(read_image(samples[i * step].image), short_side) for i in range(count)]


def fig_mask_overlay(summaries: Sequence[dict], data_root: Path | None, n_images: int = 3):
    if not summaries:
        raise Skip(f"no mask summary of a MaskViM default job in ablation/masks/ ({MASK_SUMMARY_HINT})")
    s = summaries[0]
    root = data_root or _data_root_of(s)
    if root is None or not Path(root).is_dir():
        raise Skip(f"evaluation images not found (data root {root!r}); pass --data-root")
    stages: dict[int, list[dict]] = defaultdict(list)
    for b in s["blocks"]:
        if b["part"] == "encoder":
            stages[b["stage"]].append(b)
    if not stages:
        raise Skip("the summarised model has no encoder masks")
    short = int(s.get("eval_short_side") or min(s["crop_size"]))
    images = _eval_images(s["source"], Path(root), short, n_images)
    count = len(images)
    fig, axes = plt.subplots(count, len(stages) + 1, figsize=(3.2 * (len(stages) + 1), 1.9 * count), squeeze=False)
    for i, img in enumerate(images):
        h, w = img.shape[:2]
        axes[i][0].imshow(img)
        axes[i][0].set_title("image" if i == 0 else "", fontsize=8)
        for j, (stage, blocks) in enumerate(sorted(stages.items()), start=1):
            stride = 4 * 2 ** (stage - 1)
            gh, gw = max(1, h // stride), max(1, w // stride)
            # the eval mask on this image's token grid: resized margin > 0 (see benchmark.ablation)
            kept = [(resize_bilinear(np.asarray(b["keep_margin"], dtype=np.float32), gh, gw) > 0).astype(float)
                    for b in blocks]
            dropped = 1.0 - np.mean(kept, axis=0)            # fraction of the stage's blocks dropping the token
            up = np.kron(dropped, np.ones((stride, stride)))[:h, :w]
            up = np.pad(up, ((0, h - up.shape[0]), (0, w - up.shape[1])), mode="edge")
            axes[i][j].imshow(img)
            axes[i][j].imshow(np.dstack([np.ones_like(up), np.zeros_like(up), np.zeros_like(up), 0.55 * up]))
            if i == 0:
                shade = f", shade = share of its {len(blocks)} blocks" if len(blocks) > 1 else ""
                axes[i][j].set_title(f"stage {stage}: dropped tokens red{shade}; kept "
                                     f"{statistics.fmean(b['inference_kept'] for b in blocks):.0%}", fontsize=7)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(f"Learned MaskViM encoder masks (input-independent spatial priors) over {s['source']} val images; "
                 f"{s['size']}, seed {s['seed']}, iteration {s['iteration']}", fontsize=8)
    fig.tight_layout()
    return fig


def _data_root_of(summary: dict) -> Path | None:
    root = summary.get("data_root")
    return Path(root) if root else None


# ------------------------------------------------------------------------------------- driver
def save_figure(fig, out_dir: Path, name: str, formats: Sequence[str] = FORMATS) -> list[Path]:
    paths = []
    for ext in formats:
        path = out_dir / f"{name}.{ext}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def make_plots(results_dir: str | Path, out_dir: str | Path | None = None, *, data_root: str | Path | None = None,
               severity: int = 5, formats: Sequence[str] = FORMATS) -> dict[str, list[Path] | str]:
    """Every figure the results support: name -> written files, or the reason it was skipped."""
    results_dir = Path(results_dir)
    out = Path(out_dir) if out_dir else results_dir / "plots"
    main = load_results(results_dir)
    ablation_dir = ablation_results_dir(results_dir)
    ablation = load_results(ablation_dir)
    summaries: list[dict] | None = None

    def masks() -> list[dict]:
        nonlocal summaries
        if summaries is None:
            summaries = _default_summaries(ablation_dir)
        return summaries

    figures: list[tuple[str, Callable[[], Any]]] = [
        ("cityscapes_c_bars", lambda: fig_cityscapes_c(main, severity)),
        *[(f"setting_{s}", (lambda s=s: fig_setting(main, s))) for s in ("gta", "cityscapes", "mapillary")],
        ("fig5a", lambda: fig5a(ablation)),
        ("fig5b", lambda: fig5b(masks())),
        ("fig6a", lambda: fig6(ablation, "cityscapes")),
        ("fig6b", lambda: fig6(ablation, "gta")),
        ("mask_overlay", lambda: fig_mask_overlay(masks(), Path(data_root) if data_root else None)),
    ]
    report: dict[str, list[Path] | str] = {}
    for name, make in figures:
        try:
            report[name] = save_figure(make(), out, name, formats)
        except Skip as e:
            report[name] = str(e)
        finally:
            plt.close("all")
    return report


@guarded
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmark.plots", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results-dir", default=None,
                    help="folder with runs/ and ablation/ (default: results/ in the repository, as benchmark.run)")
    ap.add_argument("--out", default=None, help="output folder (default <results-dir>/plots)")
    ap.add_argument("--data-root", default=None,
                    help="data root for the mask overlays' images (default: the one the job was trained from)")
    ap.add_argument("--severity", type=int, default=5, help="Cityscapes-C severity (default 5)")
    ap.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    args = ap.parse_args(argv)
    report = make_plots(results_dir_of(args.results_dir), args.out, data_root=args.data_root, severity=args.severity,
                        formats=args.formats)
    for name, what in report.items():
        print(f"{name}: " + (", ".join(str(p) for p in what) if isinstance(what, list) else f"skipped: {what}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
