"""benchmark.plots: figures (PNG + PDF) from result files the test writes; skips say why."""
from __future__ import annotations

import json

import numpy as np
import pytest
from test_table import make_result

from benchmark import paper, plots
from benchmark.jobs import MASKS_SUBDIR, ablation_results_dir
from benchmark.results import write_result
from benchmark.variants import FIGURE_VARIANTS, cell_of


def write_main(root):
    for model in ("maskvim", "vmamba_upernet"):
        for seed in (0, 1):
            for target in ("gtav", "cityscapes", "bdd", "mapillary", "synthia"):
                write_result(root, make_result(model=model, setting="gta", source="gtav", target=target,
                                               seed=seed, miou=40.0 + seed))
            for c in paper.target_columns(2):
                write_result(root, make_result(model=model, setting="cityscapes-c", source="cityscapes",
                                               target=f"cityscapes_c/{c}/5", seed=seed, miou=30.0 + seed))


def write_ablation(root):
    ab = ablation_results_dir(root)
    for k, name in enumerate(FIGURE_VARIANTS[5]):
        model, cell = cell_of(name)
        for target in ("bdd", "mapillary", "gtav", "synthia", "cityscapes"):
            write_result(ab, make_result(model=model, variant=cell, setting="cityscapes", source="cityscapes",
                                         target=target, miou=30.0 + k))


def mask_summary(kept_by_stage: dict[int, list[float]]) -> dict:
    blocks = []
    for stage, kept in kept_by_stage.items():
        h, w = 8 // 2 ** (stage - 1), 16 // 2 ** (stage - 1)
        blocks.append({"where": f"encoder.stage{stage}.block0", "part": "encoder", "stage": stage, "grid": [h, w],
                       "inference_kept": kept[0], "sample_kept": kept[1:],
                       "keep_margin": [[1.0 if (i + j) % 2 else -1.0 for j in range(w)] for i in range(h)]})
    blocks.append({"where": "decoder.lateral1.block0", "part": "decoder", "stage": 1, "grid": [8, 16],
                   "inference_kept": 0.9, "sample_kept": [0.9], "keep_margin": [[1.0] * 16] * 8})
    return {"version": 1, "job_id": "job", "model": "maskvim", "size": "micro", "variant": "default",
            "source": "cityscapes", "seed": 0, "config_hash": "0" * 16, "mask_form": "authors",
            "crop_size": [32, 64], "eval_short_side": 32, "data_root": None, "iteration": 4, "samples": 2,
            "blocks": blocks}


def test_figures_from_result_files(tmp_path):
    write_main(tmp_path)
    write_ablation(tmp_path)
    masks = ablation_results_dir(tmp_path) / MASKS_SUBDIR
    masks.mkdir(parents=True)
    (masks / "job.json").write_text(json.dumps(mask_summary({1: [0.3, 0.2, 0.4], 2: [0.5, 0.5, 0.5],
                                                              3: [0.7, 0.6, 0.8]})))
    out = tmp_path / "figs"
    report = plots.make_plots(tmp_path, out)
    made = {name for name, what in report.items() if isinstance(what, list)}
    assert made == {"cityscapes_c_bars", "setting_gta", "fig5a", "fig5b"}
    for name in made:
        png, pdf = out / f"{name}.png", out / f"{name}.pdf"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pdf.read_bytes()[:5] == b"%PDF-"
    # what is missing is skipped with a reason, never drawn empty
    assert "no cityscapes results" in report["setting_cityscapes"]
    assert "without_mask" in report["fig6a"] and "ablation/runs" in report["fig6b"]
    assert "data root" in report["mask_overlay"]
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.{e}" for n in made for e in ("png", "pdf"))


def test_stage_fractions_average_blocks_and_keep_the_sample_spread():
    s = mask_summary({1: [0.25, 0.2, 0.3], 3: [0.75, 0.7, 0.9]})
    s["blocks"].append({**s["blocks"][0], "where": "encoder.stage1.block1", "inference_kept": 0.75,
                        "sample_kept": [0.6, 0.5]})
    stages = plots._encoder_stage_fractions([s])
    assert list(stages) == [1, 3]                               # decoder masks are not encoder stages
    assert stages[1][0] == [pytest.approx(0.5)]                 # inference: mean over the stage's blocks
    assert stages[1][1] == [pytest.approx(0.4), pytest.approx(0.4)]   # per sample: mean over blocks
    assert stages[3] == ([0.75], [0.7, 0.9])


def test_nothing_to_plot_and_cli(tmp_path, capsys):
    assert plots.main(["--results-dir", str(tmp_path), "--formats", "png"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("skipped") == 9
    assert not (tmp_path / "plots").exists() or not any((tmp_path / "plots").iterdir())


def test_plots_read_mask_summaries_and_never_write_them(tmp_path):
    write_ablation(tmp_path)                     # ablation runs (the default cell too), no masks/ folder
    report = plots.make_plots(tmp_path, tmp_path / "figs", formats=("png",))
    assert isinstance(report["fig5a"], list)
    for name in ("fig5b", "mask_overlay"):
        assert "no mask summary" in report[name] and "python -m benchmark.ablation --figure 5" in report[name]
    assert not (ablation_results_dir(tmp_path) / MASKS_SUBDIR).exists()


@pytest.mark.parametrize("size_in,size_out", [((1, 1), (3, 5)), ((2, 4), (2, 4)), ((2, 4), (7, 13)),
                                              ((8, 16), (3, 5)), ((5, 3), (16, 1)), ((4, 4), (8, 8))])
def test_resize_bilinear_matches_torch_interpolate(size_in, size_out):
    import torch
    import torch.nn.functional as F

    grid = np.random.default_rng(sum(size_in + size_out)).normal(size=size_in).astype(np.float32)
    want = F.interpolate(torch.from_numpy(grid)[None, None], size=size_out, mode="bilinear",
                         align_corners=False)[0, 0].numpy()
    got = plots.resize_bilinear(grid, *size_out)
    assert got.shape == size_out
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)   # torch computes in float32


def test_resized_keep_margin_is_the_mask_eval_applies():
    """The overlay's mask (a summary's keep margin resized, > 0) is the model's own eval mask on that grid."""
    import torch

    from benchmark.ablation import summarize_masks
    from maskvim.mask import TokenMask

    class Model:
        def token_masks(self):
            return masks

    torch.manual_seed(0)
    masks = [("encoder.stage1.block0", TokenMask((8, 16))), ("encoder.stage2.block1", TokenMask((3, 5)))]
    for (_, tm), block in zip(masks, summarize_masks(Model(), samples=2)):
        for gh, gw in ((4, 8), (8, 16), (11, 23), (2, 3)):
            drawn = plots.resize_bilinear(np.asarray(block["keep_margin"], dtype=np.float32), gh, gw) > 0
            np.testing.assert_array_equal(drawn, tm.inference_mask(gh, gw).numpy())


def test_mask_overlay_shows_the_eval_images(synthetic_root, tmp_path):
    """The overlay's images are the source's val images as the eval dataset resizes them."""
    from benchmark.data.datasets import build_dataset
    from benchmark.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    ds = build_dataset("cityscapes", "val", synthetic_root, train=False, eval_short_side=24)
    images = plots._eval_images("cityscapes", synthetic_root, 24, 3)
    assert len(images) == 3
    for i, img in enumerate(images):
        want = ds[i * (len(ds) // 3)]["image"].numpy().transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN
        assert img.dtype == np.uint8 and img.shape == want.shape and img.shape[0] == 24
        assert np.abs(img.astype(np.float32) - want).max() < 1e-3
    with pytest.raises(plots.Skip, match="no gtav val images"):
        plots._eval_images("gtav", tmp_path, 24, 3)

    summary = {**mask_summary({1: [0.3, 0.2, 0.4], 2: [0.5, 0.5, 0.5], 3: [0.7, 0.6, 0.8]}),
               "data_root": str(synthetic_root)}
    masks = ablation_results_dir(tmp_path) / MASKS_SUBDIR
    masks.mkdir(parents=True)
    (masks / "job.json").write_text(json.dumps(summary))
    report = plots.make_plots(tmp_path, tmp_path / "figs", formats=("png",))
    assert [p.name for p in report["mask_overlay"]] == ["mask_overlay.png"]
