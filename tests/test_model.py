"""build_model and the three models: outputs, mask placement, switches, sizes, the CPU scan path."""
from __future__ import annotations

import pytest
import torch

from maskvim import build_model
from maskvim.mask import TokenMask
from maskvim.ss2d import SS2D

from conftest import make_inputs

pytestmark = pytest.mark.usefixtures("one_thread")


TRAIN = (2, 3, 32, 64)   # smallest multiple-of-32 batch that BatchNorm (PPM pool 1) accepts in training
EVAL = (1, 3, 24, 40)    # not a multiple of 32: eval pads and crops back
CROP = (32, 64)

CONFIGS = {
    "maskvim": ("maskvim", {}),
    "maskvim-no_mask": ("maskvim", dict(decoder="no_mask")),
    "maskvim-vss": ("maskvim", dict(decoder="vss")),
    "maskvim-block_all-depths122-paper": ("maskvim", dict(encoder_mask_stages=(1, 2, 3, 4),
                                                          mask_d_depths=(1, 2, 2), mask_form="paper")),
    "vmamba_upernet": ("vmamba_upernet", {}),
    "vmamba_linear-masked": ("vmamba_linear", dict(encoder_mask_stages=(1, 2, 3))),
}


def encoder_stage_blocks(stages, depths=(1, 1, 2, 1)):
    return [f"encoder.stage{s}.block{j}" for s in stages for j in range(depths[s - 1])]


def decoder_blocks(depths):
    return [f"decoder.lateral{i + 1}.block{j}" for i, d in enumerate(depths) for j in range(d)]


EXPECTED_MASKS = {
    "maskvim": encoder_stage_blocks((1, 2, 3)) + decoder_blocks((1, 1, 1)),
    "maskvim-no_mask": encoder_stage_blocks((1, 2, 3)),
    "maskvim-vss": encoder_stage_blocks((1, 2, 3)),
    "maskvim-block_all-depths122-paper": encoder_stage_blocks((1, 2, 3, 4)) + decoder_blocks((1, 2, 2)),
    "vmamba_upernet": [],
    "vmamba_linear-masked": encoder_stage_blocks((1, 2, 3)),
}


def build(key, **extra):
    name, switches = CONFIGS[key]
    torch.manual_seed(0)
    return build_model(name, "micro", crop_size=CROP, scan_backend="ref", **switches, **extra)


@pytest.mark.parametrize("key", list(CONFIGS))
def test_train_and_eval_outputs(key):
    model = build(key)
    g = torch.Generator().manual_seed(0)
    images = torch.randn(TRAIN, generator=g)
    model.train()
    out = model(images)
    h1, w1 = TRAIN[2] // 4, TRAIN[3] // 4
    assert out["logits"].shape == (2, 19, h1, w1)
    if CONFIGS[key][0] == "vmamba_linear":
        assert "aux_logits" not in out  # no aux head on the linear baseline
    else:
        assert out["aux_logits"].shape == (2, 19, h1 // 4, w1 // 4)  # FCN aux head on stage 3
    wheres = [w for w, _ in out["encoder_masks"] + out["decoder_masks"]]
    assert wheres == EXPECTED_MASKS[key] == [w for w, _ in model.token_masks()]
    for where, m in out["encoder_masks"] + out["decoder_masks"]:
        stage = int(where.split(".")[1][-1])  # "stage3" / "lateral3" both read encoder stage 3's grid
        assert m.shape == (2, TRAIN[2] // 2 ** (stage + 1), TRAIN[3] // 2 ** (stage + 1)), where
        assert set(m.unique().tolist()) <= {0.0, 1.0}, where
    model.eval()
    with torch.no_grad():
        logits = model(torch.randn(EVAL, generator=g))
    assert logits.shape == (1, 19, EVAL[2], EVAL[3])
    assert torch.isfinite(logits).all()


def test_gradients_reach_every_mask_and_eval_is_deterministic():
    model = build("maskvim")
    g = torch.Generator().manual_seed(1)
    images = torch.randn(TRAIN, generator=g)
    labels = torch.randint(0, 19, (TRAIN[0], TRAIN[2], TRAIN[3]), generator=g)
    model.train()
    losses = model.compute_loss(model(images), labels)
    losses["loss"].backward()
    for where, tm in model.token_masks():
        assert tm.mask_logits.grad is not None and tm.mask_logits.grad.abs().sum() > 0, where
    assert model.encoder.patch_embed.proj.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        a, b = model(images), model(images)
    assert torch.equal(a, b)  # eval masks are the argmax, dropout / drop path off


def test_masks_carry_form_and_grid_from_the_switches():
    model = build_model("maskvim", "micro", crop_size=(64, 128), mask_form="paper")
    masks = dict(model.token_masks())
    assert all(isinstance(tm, TokenMask) and tm.form == "paper" for tm in masks.values())
    assert masks["encoder.stage1.block0"].grid_size == (16, 32)
    assert masks["encoder.stage3.block1"].grid_size == (4, 8)
    assert masks["decoder.lateral2.block0"].grid_size == (8, 16)
    assert model.config["mask_form"] == "paper" and model.config["crop_size"] == [64, 128]
    default = build_model("maskvim", "micro")
    assert all(tm.form == "authors" for _, tm in default.token_masks())
    assert dict(default.token_masks())["encoder.stage1.block0"].grid_size == (128, 256)  # 512x1024 crop


def test_no_encoder_masks_in_stage_4_unless_all():
    part = [w for w, _ in build_model("maskvim", "micro").token_masks()]
    assert not any(w.startswith("encoder.stage4") for w in part)
    assert any(w.startswith("encoder.stage3") for w in part)
    full = [w for w, _ in build_model("maskvim", "micro", encoder_mask_stages=(1, 2, 3, 4)).token_masks()]
    assert "encoder.stage4.block0" in full
    assert build_model("vmamba_upernet", "micro").token_masks() == []
    assert build_model("vmamba_linear", "micro").token_masks() == []


def test_mask_d_depths_are_honoured():
    model = build_model("maskvim", "micro", mask_d_depths=(2, 1, 3))
    assert [len(lat.blocks) for lat in model.decode_head.lateral_convs] == [2, 1, 3]
    no_mask = build_model("maskvim", "micro", decoder="no_mask", mask_d_depths=(2, 2, 2))
    assert [len(lat.blocks) for lat in no_mask.decode_head.lateral_convs] == [2, 2, 2]
    assert not any(w.startswith("decoder") for w, _ in no_mask.token_masks())


def test_mask_lambda_per_stage():
    model = build_model("maskvim", "micro", mask_lambda=(0.9, 0.7, 0.5))
    assert model.mask_lambdas["encoder.stage1.block0"] == 0.9
    assert model.mask_lambdas["encoder.stage2.block0"] == 0.7
    assert model.mask_lambdas["encoder.stage3.block1"] == 0.5
    with pytest.raises(ValueError, match="one value per masked stage"):
        build_model("maskvim", "micro", mask_lambda=(0.9, 0.7))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(name="maskvim", size="micro", mask_ratio=0.5, foo=1), TypeError, "foo, mask_ratio"),
    (dict(name="vmamba_linear", size="micro", decoder="mask_d"), ValueError, "maskvim only"),
    (dict(name="maskvim", size="huge"), ValueError, "unknown size 'huge'"),
    (dict(name="segformer", size="micro"), ValueError, "unknown model 'segformer'"),
    (dict(name="maskvim", size="micro", decoder="mlp"), ValueError, "decoder must be"),
    (dict(name="maskvim", size="micro", encoder_mask_stages=(0, 1)), ValueError, "encoder_mask_stages"),
    (dict(name="maskvim", size="micro", mask_losses=("ratio", "size")), ValueError, "mask_losses"),
    (dict(name="maskvim", size="micro", mask_form="soft"), ValueError, "mask_form"),
    (dict(name="maskvim", size="micro", mask_lambda=1.5), ValueError, "mask_lambda"),
    (dict(name="maskvim", size="micro", mask_d_depths=(1, 1)), ValueError, "mask_d_depths"),
    (dict(name="maskvim", size="micro", scan_backend="gpu"), ValueError, "scan_backend"),
    (dict(name="maskvim", size="micro", pretrained="/nonexistent/vssm.pth"), FileNotFoundError, "/nonexistent"),
])
def test_builder_rejects_bad_switches_naming_them(kwargs, error, match):
    with pytest.raises(error, match=match):
        build_model(**kwargs)


def test_training_input_must_be_a_multiple_of_32():
    model = build_model("vmamba_linear", "micro").train()
    with pytest.raises(ValueError, match="multiples of 32"):
        model(torch.zeros(2, 3, 48, 64))


def test_scan_backend_is_recorded_and_propagated():
    model = build_model("maskvim", "micro", scan_backend="ref")
    ss2d = [m for m in model.modules() if isinstance(m, SS2D)]
    assert model.scan_backend == "ref" and all(m.scan_backend == "ref" for m in ss2d)
    model.scan_backend = "auto"
    assert all(m.scan_backend == "auto" for m in ss2d)
    assert model.config["scan_backend"] == "ref"


def test_no_weight_decay_and_mask_parameter_names():
    model = build_model("maskvim", "micro")
    names = dict(model.named_parameters())
    no_wd = [n for n, p in names.items() if getattr(p, "_no_weight_decay", False)]
    assert no_wd and all(n.endswith((".A_logs", ".Ds")) for n in no_wd)
    assert "encoder.layers.0.blocks.0.self_attention.A_logs" in no_wd
    mask_params = [n for n in names if n.endswith("mask_logits")]
    assert len(mask_params) == len(model.token_masks())


def count_params(name, size):
    # a real CPU build (~0.5 s at tiny) is cheaper than a "meta" one, whose first use imports torch's decompositions
    return sum(p.numel() for p in build_model(name, size).parameters())


def test_tiny_parameter_counts_match_vmamba():
    upernet = count_params("vmamba_upernet", "tiny")
    assert 53e6 <= upernet <= 57e6  # VMamba-T (v0) + UperNet: 55M published (150 classes)
    maskvim = count_params("maskvim", "tiny")
    assert upernet + 2e6 <= maskvim <= upernet + 10e6  # a few million more (3 x 512-channel MVSS laterals)
    assert 21e6 <= count_params("vmamba_linear", "tiny") <= 23e6  # the ~22M VMamba-T encoder alone


def test_cpu_backend_forward_backward_micro():
    scan = pytest.importorskip("maskvim.scan", reason="maskvim.scan not importable")
    if "cpu" not in scan.available_backends():
        pytest.skip("the compiled 'cpu' selective-scan backend is unavailable here (no C++ compiler?)")
    torch.manual_seed(0)
    model = build_model("maskvim", "micro", crop_size=(128, 256), scan_backend="cpu").train()
    images = torch.randn(2, 3, 128, 256)
    labels = torch.randint(0, 19, (2, 128, 256))
    losses = model.compute_loss(model(images), labels)
    losses["loss"].backward()
    assert torch.isfinite(losses["loss"])
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_pretrained_switch_loads_the_encoder(tmp_path):
    torch.manual_seed(1)
    source = build_model("vmamba_linear", "micro")
    sd = {k: v for k, v in source.encoder.state_dict().items() if not k.startswith("outnorm")}
    path = tmp_path / "vssm_micro.pth"
    torch.save({"model": sd}, path)
    torch.manual_seed(2)
    model = build_model("maskvim", "micro", pretrained=str(path))
    loaded = model.encoder.state_dict()
    key = "layers.2.blocks.1.self_attention.x_proj_weight"
    assert torch.equal(loaded[key], sd[key]) and torch.equal(loaded["patch_embed.proj.weight"], sd["patch_embed.proj.weight"])
    assert model.config["pretrained"] == str(path) and model.pretrained_report is not None


def test_perf_scan_timer_clocks_the_backward_and_keeps_every_gradient():
    """The model section's share counts the scan's backward too; the wrapper must not change a gradient."""
    import maskvim.scan as scan
    from benchmark.perf.model import _scan_timer

    shape = (2, 8, 4, 2, 33)  # b, d, n, g, l
    xs = make_inputs(*shape, dtype=torch.float32, seed=1)
    dy = torch.randn(2, 8, 33, generator=torch.Generator().manual_seed(0))
    expected = torch.autograd.grad(scan.selective_scan(*xs, backend="ref"), xs, dy)
    total = [0.0]
    xs = make_inputs(*shape, dtype=torch.float32, seed=1)
    with _scan_timer(torch.device("cpu"), total):
        y = scan.selective_scan(*xs, backend="ref")
        after_forward = total[0]
        grads = torch.autograd.grad(y, xs, dy)
    assert 0.0 < after_forward < total[0]
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("phase", ["train_step", "inference"])
def test_perf_measure_reports_a_step_and_restores_the_scan(phase):
    import maskvim.scan as scan
    from benchmark.perf.model import measure

    real = scan.selective_scan
    model = build_model("vmamba_linear", "micro", crop_size=CROP, scan_backend="ref")
    row = measure(model, phase, 2, CROP, torch.device("cpu"), iters=1, warmup=0)
    assert scan.selective_scan is real
    assert row["seconds_per_iter"] > 0 and row["images_per_s"] == pytest.approx(2 / row["seconds_per_iter"])
    assert 0.0 <= row["scan_share"] <= 1.0
    assert row["memory_method"] in ("rss_peak_delta", "rss_peak_unreset", "unavailable")


def test_perf_records_the_commit_it_measured():
    """A published perf table must name the code it timed: machine_info (printed and in --json) carries
    this checkout's HEAD, marked -dirty when tracked files differ."""
    import subprocess
    from pathlib import Path

    from benchmark.perf import machine_info

    repo = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    commit = machine_info()["git_commit"]
    assert commit in (head, head + "-dirty")
