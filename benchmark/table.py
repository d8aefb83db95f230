"""The paper's tables, filled from result files: `python -m benchmark.table --setting gta`.

Layouts follow the paper (design §5): targets as columns in the paper's order, the Average over
them, plus our in-domain column; the paper's rows (benchmark/paper) and ours as mean ± std over
seeds. Best is bold and second underlined per column (LaTeX \\textbf / \\underline, Markdown ** /
<u>), ranked within the paper's rows and within ours separately unless both come from the paper
preset; no mark at all in a column whose leader is within one std of the runner-up (design §4), and
none on a single-seed row of ours (its spread is unknown).
Every table ends with notes naming what produced our numbers (read from the result files).
Numbers come only from result files; a missing cell prints as a dash.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Sequence

from benchmark import jobs, models, paper
from benchmark.cli import guarded
from benchmark.numerics import result_identity
from benchmark.atomic import atomic_write_text
from benchmark.results import RunResult, load_results
from benchmark.variants import EXTRA_TABLE_ROWS, cell_of, get_variant

SETTINGS = ("gta", "cityscapes", "mapillary", "cityscapes-c")
FORMATS = ("md", "csv", "latex")
METRICS = ("miou", "miou_present_only")

TARGET_NAMES = {
    "cityscapes": "Cityscapes", "bdd": "BDD100K", "mapillary": "Mapillary", "gtav": "GTAV", "synthia": "SYNTHIA",
    "motion_blur": "Motion blur", "defocus_blur": "Defocus blur", "glass_blur": "Glass blur",
    "gaussian_blur": "Gaussian blur", "gaussian_noise": "Gaussian noise", "impulse_noise": "Impulse noise",
    "shot_noise": "Shot noise", "speckle_noise": "Speckle noise", "brightness": "Brightness",
    "contrast": "Contrast", "saturate": "Saturate", "jpeg_compression": "JPEG", "snow": "Snow",
    "spatter": "Spatter", "fog": "Fog", "frost": "Frost",
}
SETTING_SOURCE = {"gta": "gtav", "cityscapes": "cityscapes", "mapillary": "mapillary", "cityscapes-c": "cityscapes"}
FROM_SCRATCH_PRESETS = ("test", "smoke")
MASK_FORMS = {"authors": "authors' f·(1+m)", "paper": "Eq. 9 f·m"}


# --------------------------------------------------------------------------------------- model
@dataclasses.dataclass
class Cell:
    """A number in a table: a single value (paper) or mean ± std over n seeds (ours)."""
    mean: float
    std: float | None = None
    n: int | None = None   # seeds behind an average of ours; None for a printed (paper) or derived value
    mark: str = ""      # "best" | "second" | ""


Value = Cell | str | None   # None prints as a dash


@dataclasses.dataclass
class Table:
    title: str
    columns: list[str]
    numeric: list[bool]                # per column: holds Cells
    rows: list[list[Value]]
    notes: list[str]
    rank_groups: list[list[int]] = dataclasses.field(default_factory=list)   # row indices ranked together
    unranked: set[int] = dataclasses.field(default_factory=set)              # numeric columns never marked
    decimals: int = 1                                                         # digits shown in md / LaTeX


def summarize(values: Sequence[float]) -> Cell | None:
    """Mean and sample std (n-1) over seeds; std None for a single seed."""
    if not values:
        return None
    n = len(values)
    return Cell(statistics.fmean(values), statistics.stdev(values) if n > 1 else None, n)


def mark_best(table: Table) -> None:
    """Bold the best and underline the second of each numeric column within each rank group.

    A column whose leader is within one std (the larger of the two) of the runner-up gets no
    marks: the order is not supported by the seeds. A single-seed row of ours has no std, so it is
    never marked (a table of one-seed rows has no marks at all). The second is underlined only when it is
    in turn clear of the third.
    """
    for col, is_num in enumerate(table.numeric):
        if not is_num or col in table.unranked:
            continue
        for group in table.rank_groups:
            # rows that show one shared cell (same training config) hold the same Cell object
            unique = {id(c): c for c in (table.rows[r][col] for r in group) if isinstance(c, Cell)}
            cells = sorted(unique.values(), key=lambda c: -c.mean)
            if not cells:
                continue
            if len(cells) == 1:   # nothing to rank against
                continue
            if _clear(cells[0], cells[1]):
                cells[0].mark = "best"
                if len(cells) == 2 or _clear(cells[1], cells[2]):
                    cells[1].mark = "second"


def _clear(a: Cell, b: Cell) -> bool:
    """`a` leads `b` by more than one std (the larger of theirs); a single-seed row of ours never leads: its
    spread is unknown."""
    if a.n == 1:
        return False
    spread = max(a.std or 0.0, b.std or 0.0)
    return a.mean - b.mean > spread + 1e-9


# ------------------------------------------------------------------------------------ results
def _metric(r: RunResult, metric: str) -> float:
    return float(getattr(r, metric))


def _corruption_of(target: str, severity: int) -> str | None:
    parts = target.split("/")
    if len(parts) == 3 and parts[0] == "cityscapes_c" and parts[2] == str(severity):
        return parts[1]
    return None


def _per_seed(results: Iterable[RunResult], metric: str, column_of) -> dict[int, dict[str, float]]:
    """seed -> {column: value}; column_of(result) -> column name or None (skip)."""
    out: dict[int, dict[str, float]] = defaultdict(dict)
    for r in results:
        col = column_of(r)
        if col is not None:
            out[r.seed][col] = _metric(r, metric)
    return out


def _row_cells(per_seed: dict[int, dict[str, float]], columns: Sequence[str], average_over: Sequence[str]
               ) -> tuple[dict[str, Cell | None], Cell | None, int]:
    cells = {c: summarize([v[c] for v in per_seed.values() if c in v]) for c in columns}
    averages = [statistics.fmean(v[c] for c in average_over) for v in per_seed.values()
                if all(c in v for c in average_over)]
    return cells, summarize(averages), len(per_seed)


def _describe_runs(results: Sequence[RunResult], *, ablation: bool = False) -> list[str]:
    """Notes naming preset, training budget, eval resolution, label mapping, mask form, scan backend."""
    if not results:
        return ["No result files for our rows yet: run `python -m benchmark.run` (or `benchmark.ablation`)."]

    def values(fn) -> str:
        found = sorted({str(x) for x in (fn(r) for r in results) if x is not None})
        return ", ".join(found) if found else "not recorded"

    cfg = lambda r, *keys: _dig(r.config, *keys)   # noqa: E731
    presets = values(lambda r: cfg(r, "preset"))
    notes = [f"Ours: preset {presets}; model size {values(lambda r: r.size)}; "
             f"{values(lambda r: cfg(r, 'schedule', 'iterations'))} iterations at "
             f"{values(lambda r: _hw(cfg(r, 'data', 'crop_size')))} crops, batch "
             f"{values(lambda r: cfg(r, 'schedule', 'batch_size'))}"
             + (" (the preset's reduced ablation budget)" if ablation else "") + "; "
             f"seeds {values(lambda r: r.seed)}."]
    if any(cfg(r, "preset") in FROM_SCRATCH_PRESETS for r in results):
        notes.append("Trained from scratch (no pretrained weights) on the synthetic street-scene domains: "
                     "our numbers are not comparable with the paper's.")
    notes.append(f"Eval: whole image, single scale, short side {values(lambda r: cfg(r, 'eval', 'short_side'))}, "
                 "logits resized to the label's resolution.")
    notes.append(f"mIoU: {values(lambda r: cfg(r, 'eval', 'miou'))}.")
    notes.append(f"Label mapping: {values(lambda r: _label_mapping(r))}.")
    notes.append(f"Mask form: {values(_mask_form)}; scan backend: {values(lambda r: r.scan_backend)}; "
                 f"device: {values(lambda r: r.device)}.")
    notes += _identity_notes(results)
    return notes


def _identity_notes(results: Sequence[RunResult]) -> list[str]:
    """The numeric identity (machine, libraries, dispatch, threads, numerics mode) behind our rows: one
    line, or one line per identity with the rows it covers (numbers of different identities can differ
    in every digit after training from scratch)."""
    rows: dict[str, dict[str, None]] = defaultdict(dict)
    for r in results:
        rows[result_identity(r.versions)][_row_name(r)] = None
    if len(rows) == 1:
        return [f"Numerics: {next(iter(rows))}."]
    return [f"Our rows come from {len(rows)} numeric identities; they are comparable only within one:"] + [
        f"Numerics ({k}) {ident}: {', '.join(names)}." for k, (ident, names) in enumerate(sorted(rows.items()), 1)]


def _row_name(r: RunResult) -> str:
    return (f"{models.display_name(r.model)}-{r.size}" + ("" if r.variant == "default" else f" [{r.variant}]")
            + f" seed {r.seed}")


def _single_seed_note(table: Table, rows: Sequence[int]) -> list[str]:
    """Why our single-seed rows carry no bold / underline."""
    seeds = {c.n for r in rows for c in table.rows[r] if isinstance(c, Cell) and c.n is not None}
    if 1 not in seeds:
        return []
    return ["Single-seed rows of ours are never bold or underlined: one seed cannot tell models apart (the spread "
            "between seeds is unknown); train with --seeds 0 1 2 to rank them."]


def _label_mapping(r: RunResult) -> str | None:
    for keys in (("data", "label_mapping"), ("label_mapping",), ("eval", "label_mapping")):
        v = _dig(r.config, *keys)
        if v is not None:
            return v if isinstance(v, str) else "; ".join(f"{k}: {x}" for k, x in sorted(dict(v).items()))
    return None


def _mask_form(r: RunResult) -> str:
    switches = _dig(r.config, "model", "switches") or {}
    defaults = models.default_switches(r.model, r.size) if models.is_registered(r.model) else {}
    if "mask_form" not in defaults and "mask_form" not in switches:
        return f"none ({models.display_name(r.model)})"
    masked = switches.get("encoder_mask_stages", defaults.get("encoder_mask_stages", ()))
    if r.model != "maskvim" and not masked:
        return f"none ({models.display_name(r.model)})"
    form = switches.get("mask_form", defaults.get("mask_form", "authors"))
    return MASK_FORMS.get(form, form)


def _dig(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _hw(v: Any) -> str | None:
    return f"{v[0]}x{v[1]}" if isinstance(v, (list, tuple)) and len(v) == 2 else None


# ------------------------------------------------------------------------------ setting table
def setting_table(setting: str, results: Sequence[RunResult], *, include_paper: bool = True,
                  metric: str = "miou", severity: int = 5) -> Table:
    """Tab. 2-5 layout for `setting` with the paper's rows and ours (variant rows of the main grid)."""
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; valid: {', '.join(SETTINGS)}")
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")
    table_no = paper.SETTING_TABLES[setting]
    targets = paper.target_columns(table_no)
    source = SETTING_SOURCE[setting]
    corrupted = setting == "cityscapes-c"
    value_cols = ["average", *targets] if corrupted else [*targets, "average"]
    in_domain = "Clean (in-domain)" if corrupted else f"In-domain ({TARGET_NAMES[source]})"
    label_cols = ["Method"] if corrupted else ["Method", "Backbone"]
    columns = label_cols + [TARGET_NAMES.get(c, "Average") for c in value_cols] + [in_domain, "Seeds"]
    numeric = [False] * len(label_cols) + [True] * (len(value_cols) + 1) + [False]

    rows: list[list[Value]] = []
    paper_rows: list[int] = []
    if include_paper:
        for _, p in paper.load_paper_table(table_no).iterrows():
            labels = [p["row_label"]] if corrupted else [p["row_label"], p["backbone"]]
            vals = [None if math.isnan(p[c]) else Cell(float(p[c])) for c in value_cols]
            paper_rows.append(len(rows))
            rows.append([*labels, *vals, None, None])

    mine = [r for r in results if r.setting == setting]
    # In-domain cells may have been written under a sibling setting with the same source.
    in_domain_pool = [r for r in results if r.target == source and r.source == source]
    groups: dict[tuple[str, str, str], list[RunResult]] = defaultdict(list)
    for r in mine:
        groups[(r.model, r.size, r.variant)].append(r)
    our_rows: list[int] = []
    for (model, size, variant) in sorted(groups, key=_our_row_order):
        group = groups[(model, size, variant)]
        column_of = ((lambda r: _corruption_of(r.target, severity)) if corrupted
                     else (lambda r: r.target if r.target in targets else None))
        per_seed = _per_seed(group, metric, column_of)
        cells, average, n = _row_cells(per_seed, targets, targets)
        if not per_seed:
            continue
        own = [r for r in group if r.target == source] or [
            r for r in in_domain_pool if (r.model, r.size, r.variant) == (model, size, variant)]
        by_seed = {r.seed: _metric(r, metric) for r in own}
        clean = summarize(list(by_seed.values()))
        name = models.display_name(model) + " (ours)" + ("" if variant == "default" else f" [{variant}]")
        labels = [name] if corrupted else [name, f"{models.backbone_name(model)}-{size}"]
        vals = [average if c == "average" else cells[c] for c in value_cols]
        our_rows.append(len(rows))
        rows.append([*labels, *vals, clean, str(n)])

    used = [r for r in mine] + [r for r in in_domain_pool if r.setting != setting and any(
        (r.model, r.size, r.variant) == k for k in groups)]
    joint = bool(used) and all(_dig(r.config, "preset") == "paper" for r in used)
    rank_groups = [paper_rows + our_rows] if joint else [g for g in (paper_rows, our_rows) if g]
    sev = f", severity {severity}" if corrupted else ""
    title = (f"Tab. {table_no}: {_setting_title(setting)}{sev} "
             f"(mIoU %, {'mmseg convention' if metric == 'miou' else 'classes present in GT only'})")
    notes = _describe_runs(used)
    if include_paper:
        notes.append(f"Paper rows: MaskViM (AAAI 2025) Tab. {table_no}, as printed (mmseg mIoU, real data, "
                     "ImageNet-pretrained backbones)." + ("" if joint else
                                                          " Best / second are marked within the paper's rows and "
                                                          "within ours separately."))
    notes.append("Bold = best, underlined = second; no mark where the leader is within one std of the runner-up. "
                 "Average over the paper's targets (per seed, then mean ± std); the in-domain column is ours only.")
    unranked = {columns.index("Seeds")}
    t = Table(title, columns, numeric, rows, notes, rank_groups, unranked)
    mark_best(t)
    t.notes += _single_seed_note(t, our_rows)
    return t


def _setting_title(setting: str) -> str:
    return {"gta": "GTAV-to-others", "cityscapes": "Cityscapes-to-others", "mapillary": "Mapillary-to-others",
            "cityscapes-c": "Cityscapes-to-Cityscapes-C"}[setting]


def _our_row_order(key: tuple[str, str, str]) -> tuple:
    model, size, variant = key
    sizes = models.model_sizes(model) if models.is_registered(model) else ()
    return (variant != "default", variant, sizes.index(size) if size in sizes else 9, models.model_order(model))


# ----------------------------------------------------------------------------- ablation table
ABLATION_LABELS = {6: ["Encoder", "Decoder"], 7: ["Component", "Variant"], 8: ["Loss"]}
ABLATION_TITLES = {6: "Tab. 6: mask in the encoder and decoder", 7: "Tab. 7: components",
                   8: "Tab. 8: loss combinations"}


def ablation_table(table_no: int, results: Sequence[RunResult], *, include_paper: bool = True,
                   metric: str = "miou") -> Table:
    """Tab. 6-8: the paper's rows with ours beside them (same cell for identical configs) and Δ default."""
    if table_no not in paper.ABLATION_TABLES:
        raise ValueError(f"--ablation {table_no}: ablation tables are {', '.join(map(str, paper.ABLATION_TABLES))}")
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")
    setting = paper.ABLATION_SETTING
    source = SETTING_SOURCE[setting]
    targets = paper.target_columns(table_no)
    mine = [r for r in results if r.setting == setting]
    sizes = sorted({r.size for r in mine})
    if len(sizes) > 1:
        raise ValueError(f"ablation results of several model sizes {sizes}: pass --size")

    p = paper.load_paper_table(table_no)
    entries: list[tuple[list[str], str, Any]] = []       # (labels, variant, paper row or None)
    for _, row in p.iterrows():
        labels = ([row["encoder"], row["decoder"]] if table_no == 6 else
                  [row["component"], row["row_label"]] if table_no == 7 else [row["row_label"]])
        entries.append((labels, row["variant"], row))
    for extra in EXTRA_TABLE_ROWS.get(table_no, ()):
        desc = get_variant(extra).description
        labels = ["ours (extra row)", desc] if table_no == 7 else [desc] * len(ABLATION_LABELS[table_no])
        entries.append((labels, extra, None))

    label_cols = ABLATION_LABELS[table_no]
    ours_cols = [TARGET_NAMES[t] for t in targets] + ["Average", "Δ default", f"In-domain ({TARGET_NAMES[source]})"]
    paper_cols = ([f"Paper {TARGET_NAMES[t]}" for t in targets] + ["Paper Average", "Paper Δ default"]
                  if include_paper else [])
    columns = label_cols + ours_cols + paper_cols + ["Seeds", "Note"]
    numeric = [False] * len(label_cols) + [True] * (len(ours_cols) + len(paper_cols)) + [False, False]

    cache: dict[tuple[str, str], tuple] = {}

    def ours(variant: str) -> tuple[dict[str, Cell | None], Cell | None, Cell | None, int, str]:
        # one set of Cell objects per training cell: rows sharing a cell share them (see mark_best)
        key = cell_of(variant)
        if key not in cache:
            cache[key] = _ours(*key)
        return cache[key]

    def _ours(model: str, cell: str) -> tuple[dict[str, Cell | None], Cell | None, Cell | None, int, str]:
        group = [r for r in mine if r.model == model and r.variant == cell]
        per_seed = _per_seed(group, metric, lambda r: r.target if r.target in targets else None)
        cells, avg, n = _row_cells(per_seed, targets, targets)
        clean = summarize([_metric(r, metric) for r in group if r.target == source])
        return cells, avg, clean, n, cell

    default_avg = ours("default")[1]
    paper_default = p[p["variant"] == "default"]["average"]
    paper_default_avg = float(paper_default.iloc[0]) if len(paper_default) else None
    first_row_of_cell: dict[tuple[str, str], str] = {}
    rows: list[list[Value]] = []
    for labels, variant, prow in entries:
        cells, avg, clean, n, cell = ours(variant)
        delta = Cell(avg.mean - default_avg.mean) if avg and default_avg else None
        vals: list[Value] = [cells[t] for t in targets] + [avg, delta, clean]
        if include_paper:
            if prow is None:
                vals += [None] * (len(targets) + 2)
            else:
                pv = [None if math.isnan(prow[t]) else Cell(float(prow[t])) for t in targets]
                pavg = None if math.isnan(prow["average"]) else Cell(float(prow["average"]))
                pdelta = Cell(pavg.mean - paper_default_avg) if pavg and paper_default_avg is not None else None
                vals += [*pv, pavg, pdelta]
        note = [] if prow is None or not prow["note"] or not include_paper else [prow["note"]]
        key = cell_of(variant)
        label = " / ".join(str(x) for x in labels)
        if key in first_row_of_cell and variant != "default":
            note.append(f"our cell is the same config as row '{first_row_of_cell[key]}' (trained once)")
        elif cell != variant:
            note.append(f"same config as our '{cell}' cell of {models.display_name(key[0])} (trained once)")
        first_row_of_cell.setdefault(key, label)
        rows.append([*labels, *vals, str(n) if n else None, "; ".join(note)])

    ranked = list(range(len(rows)))
    unranked = {columns.index("Δ default"), columns.index("Seeds"), columns.index("Note")}
    if include_paper:
        unranked.add(columns.index("Paper Δ default"))
    t = Table(f"{ABLATION_TITLES[table_no]} ({_setting_title(setting)}, mIoU %)", columns, numeric, rows,
              _describe_runs(mine, ablation=True) + [
                  f"Setting: {_setting_title(setting)}, as the paper's ablation columns (B, M, G, S) and its "
                  "default row (= Tab. 3's MaskViM row) show. Δ default = Average minus the default row's."] + ([
                  "Paper columns: MaskViM (AAAI 2025), as printed; where the paper contradicts itself both of its "
                  "values are shown and the Note says so. Best / second marked among ours and among the paper's "
                  "columns separately; no mark within one std of the runner-up."] if include_paper else [
                  "Best / second marked; no mark within one std of the runner-up."]),
              [ranked])
    t.unranked = unranked
    mark_best(t)
    t.notes += _single_seed_note(t, ranked)
    return t


# --------------------------------------------------------------------------- efficiency table
def load_complexity_records(results_dir: Path | None) -> list[dict]:
    """The default-switch records benchmark.complexity kept under <results-dir>/complexity/."""
    import json

    folder = Path(results_dir) / jobs.COMPLEXITY_SUBDIR if results_dir else None
    out = []
    for path in sorted(folder.glob("*.json")) if folder and folder.is_dir() else []:
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
            if not rec.get("switches"):
                out.append({k: rec[k] for k in jobs.COMPLEXITY_RECORD_KEYS})
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"{path}: not a complexity record ({e}); delete it and rerun "
                             f"`python -m benchmark.complexity --size tiny --results-dir {results_dir}`") from e
    return out


def efficiency_table(results: Sequence[RunResult], *, results_dir: Path | None = None,
                     tiny_input: tuple[int, int] = (512, 2048)) -> Table:
    """Params and GMACs (with / without the scan): every registered model at tiny size (from the records
    benchmark.complexity keeps under <results-dir>/complexity/), and the size(s) that ran (result files)."""
    columns = ["Model", "Size", "Input (HxW)", "Params (M)", "GMACs", "GMACs w/o scan", "Source"]
    numeric = [False, False, False, True, True, True, False]
    rows: list[list[Value]] = []
    notes: list[str] = []
    records = {(r["model"], r["size"]): r for r in load_complexity_records(results_dir)
               if list(r["input"]) == list(tiny_input)}
    missing = []
    for model in models.list_models():
        if "tiny" not in models.model_sizes(model):
            continue
        measured = records.pop((model, "tiny"), None)
        if measured is None:
            missing.append(model)
        rows.append([models.display_name(model), "tiny", _hw(tiny_input),
                     Cell(measured["params"] / 1e6) if measured else None,
                     _opt_cell(measured and measured.get("gmacs")), _opt_cell(measured and measured.get("gmacs_no_scan")),
                     "benchmark.complexity" if measured else "not measured"])
    for (model, size), r in sorted(records.items(), key=lambda kv: (kv[0][1], models.model_order(kv[0][0]))):
        rows.append([models.display_name(model), size, _hw(r["input"]), Cell(r["params"] / 1e6),
                     _opt_cell(r["gmacs"]), _opt_cell(r["gmacs_no_scan"]), "benchmark.complexity"])
    if missing:
        notes.append(f"Not measured at tiny size: {', '.join(missing)}; run `python -m benchmark.complexity --size tiny "
                     f"--results-dir {results_dir or 'results'}` (run_all.sh does after the grid).")
    seen: set[tuple[str, str]] = {(m, "tiny") for m in models.list_models() if m not in missing}
    for r in sorted(results, key=lambda r: (r.size, models.model_order(r.model))):
        if r.variant != "default" or (r.model, r.size) in seen:
            continue
        seen.add((r.model, r.size))
        rows.append([models.display_name(r.model), r.size, _hw(_dig(r.config, "complexity_input")) or "-",
                     Cell(r.params / 1e6), _opt_cell(r.gmacs), _opt_cell(r.gmacs_no_scan), "result files"])
    notes += [f"Paper's claim (its Tab. 1 is missing from the text): \"{paper.EFFICIENCY_CLAIM}\" "
              f"({paper.EFFICIENCY_CLAIM_SOURCE}).",
              "MACs counted by fvcore (one multiply-add = 1), the selective scan added analytically; 19 classes. "
              "Mask_D keeps UperNet's convolutions and adds 512-channel SSM blocks, so it costs more MACs than "
              "UperNet: we report what we measure."]
    return Table("Efficiency: parameters and multiply-accumulates", columns, numeric, rows, notes, [], set(),
                 decimals=2)


def _opt_cell(v: float | None) -> Cell | None:
    return None if v is None else Cell(float(v))


# ---------------------------------------------------------------------------------- renderers


def render(table: Table, fmt: str) -> str:
    if fmt == "md":
        return _render_md(table)
    if fmt == "csv":
        return _render_csv(table)
    if fmt == "latex":
        return _render_latex(table)
    raise ValueError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")


def _cell_text(v: Value, is_delta: bool, bold, under, pm: str, decimals: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    d = decimals
    text = (f"{v.mean:+.{d}f}" if is_delta else f"{v.mean:.{d}f}") + (f"{pm}{v.std:.{d}f}" if v.std is not None else "")
    return bold(text) if v.mark == "best" else under(text) if v.mark == "second" else text


def _render_md(t: Table) -> str:
    esc = lambda s: str(s).replace("|", "\\|")   # noqa: E731
    lines = [f"**{esc(t.title)}**", "", "| " + " | ".join(esc(c) for c in t.columns) + " |",
             "|" + "|".join("---:" if n else "---" for n in t.numeric) + "|"]
    for row in t.rows:
        lines.append("| " + " | ".join(
            esc(_cell_text(v, "Δ" in t.columns[i], lambda s: f"**{s}**", lambda s: f"<u>{s}</u>", " ± ", t.decimals))
            for i, v in enumerate(row)) + " |")
    lines.append("")
    lines += [f"- {esc(n)}" for n in t.notes]
    return "\n".join(lines) + "\n"


def _render_csv(t: Table) -> str:
    import csv
    import io

    header: list[str] = []
    for name, is_num in zip(t.columns, t.numeric):
        header += [name, f"{name} std", f"{name} n"] if is_num else [name]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for row in t.rows:
        out: list[Any] = []
        for v, is_num in zip(row, t.numeric):
            if is_num:
                out += ["", "", ""] if not isinstance(v, Cell) else [
                    round(v.mean, 4), "" if v.std is None else round(v.std, 4), "" if v.n is None else v.n]
            else:
                out.append("" if v is None else v)
        w.writerow(out)
    for n in t.notes:
        w.writerow(["note: " + n] + [""] * (len(header) - 1))
    return buf.getvalue()


_LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
                  "λ": r"$\lambda$", "α": r"$\alpha$", "Δ": r"$\Delta$", "±": r"$\pm$", "×": r"$\times$",
                  "·": r"$\cdot$", "<": r"$<$", ">": r"$>$"}


def latex_escape(s: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(s))


def _render_latex(t: Table) -> str:
    ncol = len(t.columns)
    spec = "".join("r" if n else "l" for n in t.numeric)
    lines = [f"% {latex_escape(t.title)}", "% needs \\usepackage{booktabs}",
             f"\\begin{{tabular}}{{{spec}}}", "\\toprule",
             " & ".join(latex_escape(c) for c in t.columns) + r" \\", "\\midrule"]
    for row in t.rows:
        cells = []
        for i, v in enumerate(row):
            if isinstance(v, Cell):
                cells.append(_cell_text(v, "Δ" in t.columns[i], lambda s: f"\\textbf{{{s}}}",
                                        lambda s: f"\\underline{{{s}}}", " $\\pm$ ", t.decimals))
            else:
                cells.append("-" if v is None else latex_escape(v))
        lines.append(" & ".join(cells) + r" \\")
    lines.append("\\bottomrule")
    for n in t.notes:
        lines.append(f"\\multicolumn{{{ncol}}}{{p{{0.95\\linewidth}}}}{{\\footnotesize {latex_escape(n)}}} \\\\")
    lines.append("\\end{tabular}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------- CLI
def build_table(args: argparse.Namespace) -> Table:
    results_dir = jobs.results_dir_of(args.results_dir)
    if args.ablation is not None:
        results = load_results(jobs.ablation_results_dir(results_dir))
        if args.size:
            results = [r for r in results if r.size == args.size]
        return ablation_table(args.ablation, results, include_paper=not args.no_paper, metric=args.metric)
    results = load_results(results_dir)
    if args.size:
        results = [r for r in results if r.size == args.size]
    if args.setting == "efficiency":
        return efficiency_table(results, results_dir=results_dir)
    return setting_table(args.setting, results, include_paper=not args.no_paper, metric=args.metric,
                         severity=args.severity)


@guarded
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmark.table", description=__doc__.split("\n")[0])
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--setting", choices=[*SETTINGS, "efficiency"], help="a main table (Tab. 2-5) or efficiency")
    what.add_argument("--ablation", type=int, choices=paper.ABLATION_TABLES, help="an ablation table (Tab. 6-8)")
    ap.add_argument("--format", choices=FORMATS, default="md")
    ap.add_argument("--results-dir", default=None,
                    help="folder with runs/ (and ablation/runs/); default: results/ in the repository, as benchmark.run")
    ap.add_argument("--no-paper", action="store_true", help="leave out the paper's rows / columns")
    ap.add_argument("--metric", choices=METRICS, default="miou",
                    help="miou: mmseg convention (the paper's); miou_present_only: classes present in the GT")
    ap.add_argument("--severity", type=int, default=5, help="Cityscapes-C severity (default 5, as the paper)")
    ap.add_argument("--size", help="only results of this model size")
    ap.add_argument("--out", help="write here (atomically) instead of printing")
    args = ap.parse_args(argv)
    text = render(build_table(args), args.format)
    if args.out:
        atomic_write_text(args.out, text)
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
