"""benchmark.table: layouts, marks, formats, notes, from result files the test writes."""
from __future__ import annotations

import csv
import io

import pytest

from benchmark import jobs, numerics, paper, table
from benchmark.results import RunResult, load_results, write_result
from benchmark.data.classes import CLASS_NAMES


def make_result(*, model="maskvim", size="micro", variant="default", setting="gta", source="gtav",
                target="cityscapes", seed=0, miou=40.0, preset="smoke", switches=None, iterations=600,
                params=1_000_000, gmacs=1.5) -> RunResult:
    """A plausible result record (no training): what the harness writes for one cell."""
    config = {"preset": preset, "model": {"name": model, "size": size, "switches": switches or {}},
              "variant": variant, "source": source, "seed": seed,
              "data": {"crop_size": [64, 128], "label_mapping": "cityscapes trainIds"},
              "schedule": {"iterations": iterations, "batch_size": 4},
              "eval": {"short_side": 128, "miou": "mmseg (class counted if in GT or prediction)"},
              "complexity_input": [128, 256]}
    return RunResult(
        model=model, size=size, variant=variant, setting=setting, source=source, target=target, seed=seed,
        miou=miou, miou_present_only=miou + 1.0, per_class_iou={c: miou for c in CLASS_NAMES},
        confusion_matrix=[[0] * 19 for _ in range(19)], params=params, gmacs=gmacs, gmacs_no_scan=gmacs * 0.9,
        iterations=iterations, train_seconds=1.0, eval_seconds=0.1, scan_backend="cpu", device="cpu",
        versions={"torch": "2.13.0"}, git_commit="abc", config=config, config_hash="0" * 16)


GTA_TARGETS = ("cityscapes", "bdd", "mapillary", "synthia")


@pytest.fixture
def gta_results(tmp_path):
    """maskvim: 2 seeds on every target; vmamba_linear: 1 seed, missing synthia; upernet: none."""
    base = {"cityscapes": 40.0, "bdd": 35.0, "mapillary": 45.0, "synthia": 30.0, "gtav": 70.0}
    for seed, shift in ((0, -1.0), (1, 1.0)):
        for target, value in base.items():
            write_result(tmp_path, make_result(target=target, seed=seed, miou=value + shift))
    for target in ("cityscapes", "bdd", "mapillary", "gtav"):
        write_result(tmp_path, make_result(model="vmamba_linear", target=target, miou=base[target] - 5.0))
    return tmp_path


def _ours(t: table.Table, name: str) -> list:
    return next(r for r in t.rows if r[0] == name)


def test_setting_table_layout_and_values(gta_results):
    t = table.setting_table("gta", load_results(gta_results))
    assert t.columns[:2] == ["Method", "Backbone"]
    assert t.columns[2:7] == ["Cityscapes", "BDD100K", "Mapillary", "SYNTHIA", "Average"]
    assert t.columns[7] == "In-domain (GTAV)"
    assert len(t.rows) == len(paper.paper_setting_table("gta")) + 2      # paper rows + 2 of ours
    mask = _ours(t, "MaskViM (ours)")
    assert mask[1] == "Mask-micro"
    assert mask[2].mean == pytest.approx(40.0) and mask[2].n == 2
    assert mask[2].std == pytest.approx(2 ** 0.5)                       # sample std of 39 and 41
    assert mask[6].mean == pytest.approx(37.5)                          # average over the 4 targets
    assert mask[7].mean == pytest.approx(70.0)                          # in-domain
    assert mask[-1] == "2"
    linear = _ours(t, "VMamba+Linear (ours)")
    assert linear[5] is None and linear[6] is None                       # missing synthia -> no average


def test_best_and_second_marks_follow_the_one_std_rule():
    def tbl(cells):
        return table.Table("t", ["m", "v"], [False, True], [["r", c] for c in cells], [], [list(range(len(cells)))])

    clear = tbl([table.Cell(50.0, 1.0, 3), table.Cell(45.0, 1.0, 3), table.Cell(40.0, 1.0, 3)])
    table.mark_best(clear)
    assert [r[1].mark for r in clear.rows] == ["best", "second", ""]
    close = tbl([table.Cell(50.0, 2.0, 3), table.Cell(49.0, 0.5, 3), table.Cell(40.0, 1.0, 3)])
    table.mark_best(close)                                               # 50 is within one std (2.0) of 49
    assert [r[1].mark for r in close.rows] == ["", "", ""]
    tie = tbl([table.Cell(75.0), table.Cell(75.0), table.Cell(60.0)])   # paper values, no std: a tie
    table.mark_best(tie)
    assert [r[1].mark for r in tie.rows] == ["", "", ""]
    second_unclear = tbl([table.Cell(60.0, 1.0, 2), table.Cell(50.0, 1.0, 2), table.Cell(49.5, 1.0, 2)])
    table.mark_best(second_unclear)
    assert [r[1].mark for r in second_unclear.rows] == ["best", "", ""]


def test_markdown_latex_csv(gta_results):
    t = table.setting_table("gta", load_results(gta_results))
    md = table.render(t, "md")
    # ours rank among ours: 40.0 ± 1.4 (2 seeds) is clear of 35.0 (1 seed)
    assert "| MaskViM (ours) | Mask-micro | **40.0 ± 1.4** |" in md
    # paper rows rank among themselves: HRDA's 46.9 is best on Cityscapes, DAFormer's 46.3 second
    assert "**46.9**" in md and "<u>46.3</u>" in md
    hrda = next(line for line in md.splitlines() if line.startswith("| HRDA"))
    assert "| - |" in hrda                                              # paper's dash stays a dash
    assert "preset smoke" in md and "Trained from scratch" in md
    assert "Label mapping: cityscapes trainIds" in md and "scan backend: cpu" in md
    assert "short side 128" in md and "authors' f·(1+m)" in md

    tex = table.render(t, "latex")
    assert "\\textbf{46.9}" in tex and "\\underline{46.3}" in tex
    assert "\\textbf{40.0 $\\pm$ 1.4}" in tex and "\\begin{tabular}" in tex and "\\bottomrule" in tex

    rows = list(csv.reader(io.StringIO(table.render(t, "csv"))))
    header = rows[0]
    assert header[:2] == ["Method", "Backbone"]
    i = header.index("Cityscapes")
    assert header[i + 1:i + 3] == ["Cityscapes std", "Cityscapes n"]
    mask = next(r for r in rows if r[0] == "MaskViM (ours)")
    assert float(mask[i]) == pytest.approx(40.0) and float(mask[i + 1]) == pytest.approx(1.4142, abs=1e-3)
    assert int(mask[i + 2]) == 2
    linear = next(r for r in rows if r[0] == "VMamba+Linear (ours)")
    assert linear[header.index("SYNTHIA")] == ""                        # missing: empty, not a dash
    assert any(r[0].startswith("note: ") for r in rows)


def test_cityscapes_c_layout(tmp_path):
    for c in ("fog", "snow"):
        write_result(tmp_path, make_result(setting="cityscapes-c", source="cityscapes",
                                           target=f"cityscapes_c/{c}/5", miou=30.0))
    write_result(tmp_path, make_result(setting="cityscapes-c", source="cityscapes", target="cityscapes/fog/3"
                                       .replace("cityscapes/", "cityscapes_c/"), miou=99.0))   # other severity
    write_result(tmp_path, make_result(setting="cityscapes", source="cityscapes", target="cityscapes", miou=60.0))
    t = table.setting_table("cityscapes-c", load_results(tmp_path))
    assert t.columns[:3] == ["Method", "Average", "Motion blur"] and t.columns[-2] == "Clean (in-domain)"
    mine = _ours(t, "MaskViM (ours)")
    assert mine[t.columns.index("Fog")].mean == 30.0
    assert mine[t.columns.index("Motion blur")] is None and mine[1] is None   # 2 of 16: no average
    assert mine[t.columns.index("Clean (in-domain)")].mean == 60.0             # from the sibling setting


def test_no_paper_and_empty_results(tmp_path):
    t = table.setting_table("cityscapes", [], include_paper=False)
    assert t.rows == [] and "No result files" in t.notes[0]
    t = table.setting_table("mapillary", [])
    assert len(t.rows) == len(paper.paper_setting_table("mapillary"))
    assert t.columns[2:6] == ["GTAV", "SYNTHIA", "Cityscapes", "BDD100K"]


def _ablation_results(tmp_path):
    root = tmp_path / "ablation"
    per_cell = {("maskvim", "default"): 50.0, ("maskvim", "decoder_no_mask"): 47.0,
                ("maskvim", "decoder_vss"): 45.0, ("vmamba_linear", "default"): 44.0,
                ("vmamba_linear", "linear_block_all"): 43.0, ("vmamba_linear", "linear_block_part"): 45.5,
                ("maskvim", "loss_ce"): 41.0}
    for (model, variant), value in per_cell.items():
        for seed in (0, 1):
            for target in ("bdd", "mapillary", "gtav", "synthia", "cityscapes"):
                write_result(root, make_result(model=model, variant=variant, setting="cityscapes",
                                               source="cityscapes", target=target, seed=seed,
                                               miou=value + 0.1 * seed, iterations=300))
    return tmp_path


def test_ablation_table_6_and_7(tmp_path):
    results = load_results(jobs.ablation_results_dir(_ablation_results(tmp_path)))
    t6 = table.ablation_table(6, results)
    assert t6.columns[:2] == ["Encoder", "Decoder"]
    assert t6.columns[2:9] == ["BDD100K", "Mapillary", "GTAV", "SYNTHIA", "Average", "Δ default", "In-domain (Cityscapes)"]
    assert len(t6.rows) == 6
    avg, delta = t6.columns.index("Average"), t6.columns.index("Δ default")
    pavg, pdelta = t6.columns.index("Paper Average"), t6.columns.index("Paper Δ default")
    by_decoder = {(r[0], r[1]): r for r in t6.rows}
    default = by_decoder[("+Block part.", "Mask_D")]
    assert default[avg].mean == pytest.approx(50.05) and default[avg].mark == "best"
    assert default[pavg].mean == 53.0 and default[pdelta].mean == 0.0
    no_mask = by_decoder[("+Block part.", "-mask")]
    assert no_mask[delta].mean == pytest.approx(-3.0) and no_mask[pdelta].mean == pytest.approx(-2.5)
    assert by_decoder[("VMamba", "Linear")][avg].mean == pytest.approx(44.05)
    assert "(the preset's reduced ablation budget)" in t6.notes[0] and "300 iterations" in t6.notes[0]

    t7 = table.ablation_table(7, results)
    uniform = next(r for r in t7.rows if r[1] == "(0.5, 0.5, 0.5)")
    default7 = next(r for r in t7.rows if r[0] == "MaskViM")
    # identical config: our cell is shared, the paper's two different values are both kept, with a note
    assert uniform[avg] is default7[avg]
    assert (uniform[pavg].mean, default7[pavg].mean) == (44.4, 53.0)
    assert "contradicts" in uniform[-1] and "same config" in uniform[-1]
    extra = t7.rows[-1]
    assert extra[0] == "ours (extra row)" and extra[pavg] is None and extra[avg] is None
    md = table.render(t7, "md")
    # only the default cell has values: nothing to rank, so no marks among ours
    assert "| - |" in md and "| 50.0 ± 0.1 |" in md and "**50.0" not in md
    t8 = table.ablation_table(8, results)
    ce = t8.rows[0]
    assert t8.columns[0] == "Loss" and ce[0] == "L_ce"
    assert ce[t8.columns.index("Average")].mean == pytest.approx(41.05) and "46.7" in ce[-1]


def test_cli_writes_atomically_and_names_bad_input(gta_results, tmp_path, capsys):
    out = tmp_path / "tables" / "gta.tex"
    assert table.main(["--setting", "gta", "--results-dir", str(gta_results), "--format", "latex",
                       "--out", str(out)]) == 0
    assert out.read_text().startswith("% Tab. 5")
    assert [p.name for p in out.parent.iterdir()] == ["gta.tex"]          # no temp file left
    assert table.main(["--setting", "gta", "--results-dir", str(gta_results), "--no-paper"]) == 0
    printed = capsys.readouterr().out
    assert "BlindNet" not in printed and "MaskViM (ours)" in printed
    with pytest.raises(SystemExit):
        table.main(["--setting", "nowhere"])
    bad = gta_results / "runs" / "broken.json"
    bad.write_text("{not json")
    assert table.main(["--setting", "gta", "--results-dir", str(gta_results)]) == 2
    assert "broken.json" in capsys.readouterr().err


def test_efficiency_table_from_result_files(gta_results):
    t = table.efficiency_table(load_results(gta_results))          # no complexity records kept
    assert t.columns[3:6] == ["Params (M)", "GMACs", "GMACs w/o scan"]
    tiny = [r for r in t.rows if r[1] == "tiny"]
    assert len(tiny) == 3 and all(r[3] is None for r in tiny)            # not measured: dashes
    micro = {r[0]: r for r in t.rows if r[1] == "micro"}
    assert set(micro) == {"MaskViM", "VMamba+Linear"}
    assert micro["MaskViM"][3].mean == pytest.approx(1.0) and micro["MaskViM"][5].mean == pytest.approx(1.35)
    assert micro["MaskViM"][2] == "128x256"
    assert any("three times fewer FLOPs" in n for n in t.notes)
    assert "| - |" in table.render(t, "md")


def test_efficiency_tiny_rows_are_measured_once_and_cached(tmp_path, monkeypatch):
    """benchmark.complexity measures once into <results-dir>/complexity/; the table only reads the records."""
    import benchmark.complexity

    calls = []

    def fake(name, size, hw, num_classes=19):
        calls.append((name, size, tuple(hw)))
        return {"model": name, "size": size, "input": list(hw), "params": 55_000_000 + len(calls),
                "gmacs": 950.0, "gmacs_no_scan": 900.0}

    monkeypatch.setattr(benchmark.complexity, "measure_complexity", fake)
    for _ in range(2):
        assert benchmark.complexity.main(["--size", "tiny", "--results-dir", str(tmp_path), "--format", "json"]) == 0
    first = table.efficiency_table([], results_dir=tmp_path)
    second = table.efficiency_table([], results_dir=tmp_path)
    assert calls == [(m, "tiny", (512, 2048)) for m in ("maskvim", "vmamba_linear", "vmamba_upernet")]
    for t in (first, second):
        upernet = next(r for r in t.rows if r[0] == "VMamba+UperNet")
        assert upernet[3].mean == pytest.approx(55.000003) and upernet[4].mean == 950.0
        assert upernet[-1] == "benchmark.complexity"
    assert "| 55.00 | 950.00 | 900.00 |" in table.render(second, "md")


def test_ablation_without_paper_columns(tmp_path):
    results = load_results(_ablation_results(tmp_path) / "ablation")
    t = table.ablation_table(8, results, include_paper=False)
    assert not any(c.startswith("Paper") for c in t.columns)
    assert all("contradicts" not in r[-1] for r in t.rows)
    assert not any("Paper columns" in n for n in t.notes)


def test_cli_reads_ablation_cells_from_their_own_folder(tmp_path, capsys):
    root = _ablation_results(tmp_path)
    write_result(root, make_result(model="maskvim", setting="cityscapes", source="cityscapes", target="bdd",
                                   miou=99.0))                     # a main-grid cell: must not leak in
    assert table.main(["--ablation", "6", "--results-dir", str(root), "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    header = rows[0]
    default = next(r for r in rows if r[:2] == ["+Block part.", "Mask_D"])
    assert float(default[header.index("BDD100K")]) == pytest.approx(50.05)
    assert float(default[header.index("Paper Average")]) == 53.0


def test_single_seed_rows_are_never_marked_and_the_note_says_why(tmp_path):
    for model, shift in (("maskvim", 0.0), ("vmamba_linear", 5.0), ("vmamba_upernet", -5.0)):
        for target in GTA_TARGETS + ("gtav",):
            write_result(tmp_path, make_result(model=model, target=target, miou=40.0 + shift))
    t = table.setting_table("gta", load_results(tmp_path))
    ours = [r for r in t.rows if str(r[0]).endswith("(ours)")]
    assert len(ours) == 3 and all(c.mark == "" for r in ours for c in r if isinstance(c, table.Cell))
    assert any("Single-seed rows of ours are never bold" in n for n in t.notes)
    md = table.render(t, "md")
    assert "**46.9**" in md                                            # the paper's rows are still ranked
    assert not any("**" in line or "<u>" in line for line in md.splitlines() if "(ours)" in line)


def test_notes_name_each_numeric_identity_and_the_rows_it_covers(tmp_path):
    def ident(cpu):
        return {"torch": "2.13.0", "numerics": "portable", "cpu_model": cpu, "cpu_capability": "AVX2",
                "mkl": "2024.2", "onednn": "3.12.0", "intra_op_threads": "1", "env.MKL_CBWR": "COMPATIBLE"}

    for model, cpu in (("maskvim", "CPU A"), ("vmamba_linear", "CPU B")):
        for target in GTA_TARGETS:
            r = make_result(model=model, target=target)
            r.versions = {**ident(cpu), numerics.IDENTITY: numerics.identity_line(ident(cpu))}
            write_result(tmp_path, r)
    notes = table.setting_table("gta", load_results(tmp_path)).notes
    lines = [n for n in notes if n.startswith("Numerics (")]
    assert any("2 numeric identities" in n for n in notes) and len(lines) == 2
    assert "CPU A" in lines[0] and lines[0].endswith("MaskViM-micro seed 0.")
    assert "CPU B" in lines[1] and lines[1].endswith("VMamba+Linear-micro seed 0.")
    one = table.setting_table("gta", [r for r in load_results(tmp_path) if r.model == "maskvim"]).notes
    assert [n for n in one if n.startswith("Numerics")] == [
        f"Numerics: {numerics.identity_line(ident('CPU A'))}."]
    old = table.setting_table("gta", [make_result()]).notes                   # a file older than the identity
    assert f"Numerics: {numerics.NOT_RECORDED}." in old
