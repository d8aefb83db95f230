"""Ablation variants build what they claim, and identical configs share one training cell."""
from __future__ import annotations

import re

import pytest
import torch

from benchmark import paper
from benchmark.models import default_switches
from benchmark.variants import (ABLATION_SWITCHES, FIGURE_VARIANTS, VARIANTS, canonical_switches, cell_of,
                                distinct_cells, get_variant, variant_model)

CROP = (32, 32)   # tiny crop: mask grids of 8x8, 4x4, 2x2, 1x1 tokens (stage 4 needs >= 32 px)


def build(name: str, **extra):
    from maskvim import build_model

    torch.manual_seed(0)
    return build_model(variant_model(name), "micro", crop_size=CROP, scan_backend="ref",
                       **get_variant(name).build_kwargs(), **extra)


def mask_layout(model) -> tuple[set[int], dict[int, int]]:
    """(encoder stages with masks, decoder lateral -> number of masked blocks)."""
    enc, dec = set(), {}
    for where, _ in model.token_masks():
        if m := re.match(r"encoder\.stage(\d+)\.", where):
            enc.add(int(m.group(1)))
        elif m := re.match(r"decoder\.lateral(\d+)\.", where):
            dec[int(m.group(1))] = dec.get(int(m.group(1)), 0) + 1
    return enc, dec


def test_ablation_defaults_do_not_depend_on_the_size():
    # canonical_switches reads the defaults at the family's first size: that must stand for every size
    from benchmark.models import model_sizes

    for model in ("maskvim", "vmamba_linear", "vmamba_upernet"):
        per_size = [{k: v for k, v in default_switches(model, s).items() if k in ABLATION_SWITCHES}
                    for s in model_sizes(model)]
        assert all(d == per_size[0] for d in per_size), model
        assert canonical_switches(model, per_size[0]) == ()


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_builds_with_the_masks_it_claims(name):
    model = build(name)
    v = get_variant(name)
    defaults = default_switches(variant_model(name), "micro")
    stages = set(v.switches.get("encoder_mask_stages", defaults["encoder_mask_stages"]))
    enc, dec = mask_layout(model)
    assert enc == stages
    assert 4 not in enc or name == "linear_block_all"               # stage 4 only for "+Block all."
    if variant_model(name) != "maskvim" or v.switches.get("decoder", "mask_d") != "mask_d":
        assert dec == {}                                           # -mask, -All., without mask, baselines
    else:
        depths = tuple(v.switches.get("mask_d_depths", (1, 1, 1)))
        assert dec == {i + 1: d for i, d in enumerate(depths)}     # Mask_D depths honoured
    forms = {tm.form for _, tm in model.token_masks()}
    assert forms <= {v.switches.get("mask_form", "authors")}


def test_table6_rows():
    assert mask_layout(build("linear_baseline")) == (set(), {})
    assert mask_layout(build("linear_block_all"))[0] == {1, 2, 3, 4}
    assert mask_layout(build("linear_block_part"))[0] == {1, 2, 3}
    assert mask_layout(build("default")) == ({1, 2, 3}, {1: 1, 2: 1, 3: 1})
    assert mask_layout(build("decoder_no_mask")) == ({1, 2, 3}, {})
    assert mask_layout(build("decoder_vss")) == ({1, 2, 3}, {})
    assert mask_layout(build("without_mask")) == (set(), {})
    assert mask_layout(build("mask_d_depths_1_2_2"))[1] == {1: 1, 2: 2, 3: 2}


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    images = torch.randn(2, 3, *CROP, generator=g)
    labels = torch.randint(0, 19, (2, *CROP), generator=g)
    labels[:, :4] = 255
    return images, labels


def losses(name: str, batch):
    model = build(name).train()
    images, labels = batch
    return model.compute_loss(model(images), labels)


def test_switched_off_loss_terms_are_zero_without_gradient(batch):
    ce_only = losses("loss_ce", batch)
    for term in ("mask_ratio", "mask_position"):
        assert ce_only[term].item() == 0.0 and not ce_only[term].requires_grad
    assert torch.allclose(ce_only["loss"], ce_only["ce"] + 0.4 * ce_only["aux_ce"])
    ratio = losses("loss_ce_ratio", batch)
    assert ratio["mask_ratio"].requires_grad and ratio["mask_ratio"].item() > 0
    assert ratio["mask_position"].item() == 0.0 and not ratio["mask_position"].requires_grad
    position = losses("loss_ce_position", batch)
    assert position["mask_position"].requires_grad and position["mask_position"].item() > 0
    assert position["mask_ratio"].item() == 0.0 and not position["mask_ratio"].requires_grad
    without = losses("without_mask", batch)
    assert without["mask_ratio"].item() == 0.0 and without["mask_position"].item() == 0.0


def test_alpha_weights_enter_the_total(batch):
    out = losses("alpha_20_10", batch)
    expected = out["ce"] + 0.4 * out["aux_ce"] + 20.0 * out["mask_ratio"] + 10.0 * out["mask_position"]
    assert torch.allclose(out["loss"], expected)
    assert out["mask_ratio"].item() > 0 and out["mask_position"].item() > 0


def test_identical_configs_share_one_cell():
    # every row that is MaskViM's default config trains the one default cell
    for name in ("default", "lambda_0.5", "lambda_stage_0.5_0.5_0.5"):
        assert cell_of(name) == ("maskvim", "default")
    assert cell_of("linear_baseline") == ("vmamba_linear", "default")
    assert cell_of("lambda_0.3") == ("maskvim", "lambda_0.3")
    assert canonical_switches("maskvim", {"mask_lambda": [0.5, 0.5, 0.5], "mask_losses": ["ratio", "position"],
                                          "alpha1": 1}) == ()
    # no two registered names with distinct cells have the same canonical config
    keys = {}
    for name in VARIANTS:
        cell = cell_of(name)
        key = (cell[0], canonical_switches(cell[0], get_variant(name).switches))
        assert keys.setdefault(key, cell) == cell
    every = [n for t in paper.ABLATION_TABLES for n in paper.load_paper_table(t)["variant"]]
    every += list(FIGURE_VARIANTS[5]) + list(FIGURE_VARIANTS[6]) + ["mask_form_paper"]
    # 34 rows and points -> 29 trainings: six of them (Tab. 6, 7 x2, 8, Fig. 5 lambda 0.5, Fig. 6) are the default
    assert len(every) == 34 and len(distinct_cells(every)) == 29


def test_unknown_variant_and_model_mismatch_are_named():
    with pytest.raises(ValueError, match="unknown variant 'nope'.*default"):
        get_variant("nope")
    with pytest.raises(ValueError, match="defined for model 'vmamba_linear'"):
        variant_model("linear_block_all", "maskvim")
    assert variant_model("default", "vmamba_upernet") == "vmamba_upernet"


def test_variants_only_set_ablation_switches():
    allowed = set(ABLATION_SWITCHES)
    for v in VARIANTS.values():
        assert set(v.switches) <= allowed, v.name
