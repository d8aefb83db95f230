"""benchmark.ablation: which cells each table / figure needs, how they reach run_grid, and a real run."""
from __future__ import annotations

import re

import pytest

from benchmark import ablation, paper
from benchmark.masks import load_mask_summaries
from maskvim.sites import MaskSite
from benchmark.presets import get_preset


def test_cells_per_table_and_figure():
    t6 = ablation.cells_for(tables=[6])
    assert list(t6) == ["cityscapes"]
    assert t6["cityscapes"] == [("vmamba_linear", "default"), ("vmamba_linear", "linear_block_all"),
                                ("vmamba_linear", "linear_block_part"), ("maskvim", "default"),
                                ("maskvim", "decoder_no_mask"), ("maskvim", "decoder_vss")]
    t7 = ablation.cells_for(tables=[7])["cityscapes"]
    assert len(t7) == 4 + 3 + 3 + 1 + 1            # lambdas (one is the default), depths, alphas, default, mask form
    assert ("maskvim", "mask_form_paper") in t7 and ("maskvim", "lambda_stage_0.5_0.5_0.5") not in t7
    f6 = ablation.cells_for(figures=[6])
    assert f6 == {"cityscapes": [("maskvim", "without_mask"), ("maskvim", "default")],
                  "gta": [("maskvim", "without_mask"), ("maskvim", "default")]}
    every = ablation.cells_for(tables=paper.ABLATION_TABLES, figures=ablation.FIGURES)
    assert {s: len(c) for s, c in every.items()} == {"cityscapes": 29, "gta": 2}
    with pytest.raises(ValueError, match="--table 5"):
        ablation.cells_for(tables=[5])


def test_grid_calls_route_default_cells_through_models():
    calls = ablation.grid_calls(ablation.cells_for(tables=[6]))
    assert calls == [{"settings": ["cityscapes"], "models": ["vmamba_linear", "maskvim"],
                      "variants": ["default", "linear_block_all", "linear_block_part", "decoder_no_mask",
                                   "decoder_vss"]}]
    named_only = ablation.grid_calls({"cityscapes": [("maskvim", "loss_ce")]})
    assert named_only == [{"settings": ["cityscapes"], "models": None, "variants": ["loss_ce"]}]


def test_run_ablation_passes_the_ablation_budget_and_folder(tmp_path, monkeypatch):
    import benchmark.run

    calls = []
    monkeypatch.setattr(benchmark.run, "run_grid", lambda preset, **kw: calls.append((preset, kw)) or {"ran": []})
    ablation.run_ablation("smoke", figures=[6], seeds=[0, 1], results_dir=str(tmp_path), shard="1/3",
                          log=lambda s: None)
    assert [kw["settings"] for _, kw in calls] == [["cityscapes"], ["gta"]]
    for preset, kw in calls:
        assert preset.name == "smoke"
        assert kw["overrides"] == dict(get_preset("smoke").ablation) and kw["overrides"]
        assert kw["results_dir"] == tmp_path / "ablation" and kw["seeds"] == [0, 1] and kw["shard"] == "1/3"


def test_cli_dry_run_counts_trainings(capsys):
    assert ablation.main(["--all", "--dry-run", "--seeds", "0", "1"]) == 0
    out = capsys.readouterr().out
    assert "cityscapes: 29 trainings per seed" in out and "gta: 2 trainings per seed" in out
    assert "total: 31 trainings x 2 seed(s)" in out
    with pytest.raises(SystemExit):
        ablation.main(["--table", "9"])


def test_mask_site_string_form_round_trips():
    assert str(MaskSite("encoder", 1, 0)) == "encoder.stage1.block0"
    assert str(MaskSite("decoder", 3, 2)) == "decoder.lateral3.block2"
    for site in (MaskSite("encoder", 4, 11), MaskSite("decoder", 1, 0), MaskSite("encoder", 12, 3)):
        assert MaskSite.parse(str(site)) == site
    assert MaskSite.parse("decoder.lateral2.block1") == MaskSite(part="decoder", stage=2, block=1)
    assert len({MaskSite("encoder", 1, 0), MaskSite.parse("encoder.stage1.block0")}) == 1   # hashable, by value


@pytest.mark.parametrize("text", ["encoder.stage1", "encoder.lateral1.block0", "decoder.stage1.block0",
                                  "encoder.stage0.block0", "encoder.stage01.block0", "encoder.stage1.block-1",
                                  "encoder.stage1.block0.x", "head.stage1.block0", "encoder.stage 1.block0",
                                  "Encoder.stage1.block0", ""])
def test_mask_site_parse_rejects_other_text(text):
    with pytest.raises(ValueError, match="unexpected token-mask location " + re.escape(repr(text))):
        MaskSite.parse(text)


def test_mask_site_rejects_bad_fields():
    for part, stage, block in (("head", 1, 0), ("encoder", 0, 0), ("decoder", 1, -1), ("encoder", "1", 0)):
        with pytest.raises(ValueError, match="mask site"):
            MaskSite(part, stage, block)


def test_summarize_masks_types_the_model_locations():
    import torch

    from maskvim.mask import TokenMask

    class Model:
        def __init__(self, masks):
            self.masks = masks

        def token_masks(self):
            return self.masks

    torch.manual_seed(0)
    model = Model([("encoder.stage2.block1", TokenMask((2, 4))), ("decoder.lateral3.block0", TokenMask((1, 2)))])
    blocks = ablation.summarize_masks(model, samples=3)
    assert [(b["where"], b["part"], b["stage"], b["grid"]) for b in blocks] == [
        ("encoder.stage2.block1", "encoder", 2, [2, 4]), ("decoder.lateral3.block0", "decoder", 3, [1, 2])]
    assert [len(b["sample_kept"]) for b in blocks] == [3, 3]
    assert [len(b["keep_margin"]) for b in blocks] == [2, 1] and len(blocks[0]["keep_margin"][0]) == 4
    assert set(blocks[0]) == {"where", "part", "stage", "grid", "inference_kept", "sample_kept", "keep_margin"}
    with pytest.raises(ValueError, match="'encoder.block0'"):
        ablation.summarize_masks(Model([("encoder.block0", TokenMask((1, 1)))]))


def test_load_mask_summaries_names_a_broken_file(tmp_path):
    from benchmark.jobs import mask_summary_path

    assert load_mask_summaries(tmp_path) == []
    good, bad = mask_summary_path(tmp_path, "a"), mask_summary_path(tmp_path, "b")
    good.parent.mkdir(parents=True)
    good.write_text('{"job_id": "a"}')
    assert load_mask_summaries(tmp_path) == [{"job_id": "a"}]
    bad.write_text("{")
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        load_mask_summaries(tmp_path)


@pytest.mark.slow
def test_figure6_end_to_end_on_the_test_preset(synthetic_root, tmp_path, monkeypatch):
    """Real cells through the grid, then a rerun that trains nothing, a table, mask summaries, figures.

    Fig. 6 limited to its Cityscapes panel keeps this to two trainings."""
    from benchmark import plots, table
    from benchmark.results import load_results

    monkeypatch.setattr(ablation.paper, "FIGURE6_SETTINGS", ("cityscapes",))
    run = dict(figures=[6], data_root=str(synthetic_root), results_dir=str(tmp_path), log=lambda s: None)
    outcome = ablation.run_ablation("test", **run)
    assert len(outcome["ran"]) == 2
    results = load_results(tmp_path / "ablation")
    assert {(r.setting, r.variant) for r in results} == {("cityscapes", "default"), ("cityscapes", "without_mask")}
    assert {r.target for r in results} == {"cityscapes", "bdd", "mapillary", "gtav", "synthia"}   # no Cityscapes-C
    assert not load_results(tmp_path)                                   # nothing in the main grid's runs/
    assert {r.config["schedule"]["iterations"] for r in results} == {dict(get_preset("test").ablation)["iterations"]}
    again = ablation.run_ablation("test", **run)
    assert again["ran"] == [] and len(again["skipped"]) == 2

    written = ablation.write_mask_summaries(tmp_path / "ablation", log=lambda s: None)
    assert len(written) == 1                                            # the default job; without_mask has none
    summary = load_mask_summaries(tmp_path / "ablation")[0]
    sites = [MaskSite.parse(b["where"]) for b in summary["blocks"]]
    assert [(s.part, s.stage) for s in sites] == [(b["part"], b["stage"]) for b in summary["blocks"]]
    assert {b["stage"] for b in summary["blocks"] if b["part"] == "encoder"} == {1, 2, 3}
    assert {b["where"] for b in summary["blocks"] if b["part"] == "decoder"} == {
        "decoder.lateral1.block0", "decoder.lateral2.block0", "decoder.lateral3.block0"}
    assert all(0 <= b["inference_kept"] <= 1 and len(b["sample_kept"]) == ablation.MASK_SAMPLES
               for b in summary["blocks"])

    md = table.render(table.ablation_table(6, results), "md")
    assert "| +Block part. | Mask_D | " in md and "the preset's reduced ablation budget" in md
    report = plots.make_plots(tmp_path, tmp_path / "plots", formats=("png",))
    for name in ("fig5b", "fig6a", "mask_overlay"):
        assert isinstance(report[name], list), (name, report[name])
