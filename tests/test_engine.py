"""The training engine on a toy segmenter: schedule, parameter groups, data order, checkpoints,
exact resume, NaN stop, evaluation. (The real models run through it in test_resume / test_grid.)"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from benchmark import distributed as D
from benchmark import engine

CPU = D.DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


class ToySegmenter(nn.Module):
    """Has every kind of parameter the recipe treats specially, and randomness in training."""

    def __init__(self, nan_from_call: int | None = None):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.ln = nn.LayerNorm(8)
        self.drop = nn.Dropout(0.3)
        self.cls = nn.Conv2d(8, 19, 1)
        self.A_logs = nn.Parameter(torch.zeros(8))
        self.A_logs._no_weight_decay = True
        self.mask_logits = nn.Parameter(torch.zeros(1, 4, 2))
        self.nan_from_call, self.calls = nan_from_call, 0

    def forward(self, x):
        f = self.bn(self.conv(x)) * (1 + self.A_logs.view(1, -1, 1, 1)) + self.mask_logits.mean()
        f = self.ln(f.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        logits = self.cls(self.drop(f))[:, :, ::2, ::2]          # half resolution, like a real head
        return {"logits": logits} if self.training else F.interpolate(logits, size=x.shape[-2:], mode="bilinear")

    def compute_loss(self, outputs, labels):
        self.calls += 1
        logits = F.interpolate(outputs["logits"], size=labels.shape[-2:], mode="bilinear")
        ce = F.cross_entropy(logits, labels, ignore_index=255)
        if self.nan_from_call is not None and self.calls >= self.nan_from_call:
            ce = ce * float("nan")
        return {"loss": ce, "ce": ce.detach(), "aux_ce": torch.zeros(())}


class ToyData(torch.utils.data.Dataset):
    """Index i -> file i % n with augmentation noise seeded by i (the data contract of benchmark.data)."""

    def __init__(self, n=5, crash_at_fetch: int | None = None):
        self.n, self.crash_at_fetch, self.fetches = n, crash_at_fetch, 0

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        self.fetches += 1
        if self.crash_at_fetch is not None and self.fetches >= self.crash_at_fetch:
            raise RuntimeError("simulated crash")
        g = torch.Generator().manual_seed(index % self.n)
        image = torch.randn(3, 8, 16, generator=g)
        label = torch.randint(0, 19, (8, 16), generator=g)
        noise = torch.randn(3, 8, 16, generator=torch.Generator().manual_seed(1000 + index))
        return {"image": image + 0.1 * noise, "label": label, "name": f"img{index % self.n}"}


def spec(**kw):
    """A test-preset job spec (seed 3) with the preset fields the loop reads overridden by `kw`."""
    from benchmark.presets import apply_overrides, get_preset
    from benchmark.spec import JobSpec

    base = dict(iterations=6, batch_size=2, batch_per_device=2, lr=1e-2, warmup_iters=2, warmup_ratio=1e-6,
                poly_power=1.0, min_lr=0.0, checkpoint_interval=2, workers=0)
    base.update(kw)
    return JobSpec.from_preset(apply_overrides(get_preset("test"), base), model="maskvim", source="cityscapes",
                               seed=3)


def fresh(seed=0, **kw):
    torch.manual_seed(seed)
    model = ToySegmenter(**kw)
    opt = engine.build_optimizer(model, lr=1e-2, weight_decay=0.01, betas=(0.9, 0.999), mask_lr_mult=100.0)
    return model, opt


# ----------------------------------------------------------------------------- schedule and groups

def test_lr_schedule_warmup_then_poly_to_zero():
    kw = dict(base_lr=6e-5, iterations=20000, warmup_iters=1500, warmup_ratio=1e-6, power=1.0)
    assert engine.lr_at(0, **kw) == pytest.approx(6e-5 * 1e-6)
    assert engine.lr_at(1500, **kw) == pytest.approx(6e-5 * (1 - 1500 / 20000))
    assert engine.lr_at(750, **kw) < engine.lr_at(1500, **kw)
    assert engine.lr_at(20000, **kw) == 0.0
    after = [engine.lr_at(i, **kw) for i in range(1500, 20001, 500)]
    assert after == sorted(after, reverse=True)


def test_param_groups_no_decay_on_norms_and_flagged_params_mask_logits_get_multiplier():
    model = ToySegmenter()
    groups = engine.param_groups(model, weight_decay=0.01, mask_lr_mult=10000.0)
    by_name = {n: g for g in groups for n in g["names"]}
    assert set(by_name) == {n for n, _ in model.named_parameters()}            # nothing lost or doubled
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    for name in ("bn.weight", "bn.bias", "ln.weight", "ln.bias", "A_logs"):
        assert by_name[name]["weight_decay"] == 0.0, name
    for name in ("conv.weight", "conv.bias", "cls.weight"):
        assert by_name[name]["weight_decay"] == 0.01 and by_name[name]["lr_mult"] == 1.0, name
    assert by_name["mask_logits"]["lr_mult"] == 10000.0
    opt = engine.build_optimizer(model, 1e-3, 0.01, (0.9, 0.999), 10000.0)
    engine.set_lr(opt, 1e-3)
    lrs = {g["lr"] for g in opt.param_groups}
    assert lrs == {1e-3, 10.0}


# ----------------------------------------------------------------------------- data order

def test_sampler_is_a_pure_function_of_seed_and_iteration():
    a = engine.TrainSampler(7, seed=1, batch_size=4, batch_per_device=4, world_size=1, rank=0,
                            start_iteration=0, iterations=10)
    b = engine.TrainSampler(7, seed=1, batch_size=4, batch_per_device=4, world_size=1, rank=0,
                            start_iteration=6, iterations=10)
    assert list(a)[6:] == list(b)
    c = engine.TrainSampler(7, seed=2, batch_size=4, batch_per_device=4, world_size=1, rank=0,
                            start_iteration=0, iterations=10)
    assert list(a) != list(c)


def test_sampler_epochs_are_permutations_with_fresh_augmentation_indices():
    s = engine.TrainSampler(6, seed=0, batch_size=3, batch_per_device=3, world_size=1, rank=0,
                            start_iteration=0, iterations=4)
    flat = [i for batch in s for i in batch]
    for epoch in range(2):
        chunk = flat[epoch * 6:(epoch + 1) * 6]
        assert sorted(i % 6 for i in chunk) == list(range(6))       # every file once per epoch
        assert all(i // 6 == epoch for i in chunk)                  # distinct index -> distinct augmentation


def test_sampler_same_images_per_step_for_any_split_of_the_global_batch():
    one = engine.TrainSampler(9, 5, batch_size=4, batch_per_device=4, world_size=1, rank=0,
                              start_iteration=0, iterations=5)
    for world, per_device in ((2, 2), (2, 1), (4, 1), (1, 1)):
        ranks = [engine.TrainSampler(9, 5, 4, per_device, world, r, 0, 5) for r in range(world)]
        accum = 4 // (per_device * world)
        for it in range(5):
            split = sorted(i for r in ranks for m in range(accum) for i in r.batch(it, m))
            assert split == sorted(one.batch(it, 0)), (world, per_device, it)


# ----------------------------------------------------------------------------- checkpoints

def test_checkpoint_roundtrip_with_weights_only_restores_rng_and_state(tmp_path):
    model, opt = fresh()
    path = tmp_path / "last.pt"
    engine.save_checkpoint(path, model=model, optimizer=opt, iteration=4, config_hash="h", train_seconds=1.5)
    draws = (torch.rand(3), np.random.rand(3), random.random())
    ckpt = engine.load_checkpoint(path, expect_hash="h")     # torch.load(weights_only=True) inside
    assert ckpt["iteration"] == 4 and ckpt["version"] == engine.CHECKPOINT_VERSION
    torch.manual_seed(99), np.random.seed(99), random.seed(99)
    engine.set_rng_state(ckpt["rng"])
    assert torch.equal(torch.rand(3), draws[0])
    assert np.array_equal(np.random.rand(3), draws[1])
    assert random.random() == draws[2]


def test_checkpoint_of_another_config_is_refused(tmp_path):
    model, opt = fresh()
    engine.save_checkpoint(tmp_path / "x.pt", model=model, iteration=1, config_hash="aaa", train_seconds=0.0)
    with pytest.raises(engine.CheckpointError, match="aaa"):
        engine.load_checkpoint(tmp_path / "x.pt", expect_hash="bbb")


def test_checkpoint_of_another_version_is_refused_naming_the_file(tmp_path):
    model, _ = fresh()
    path = tmp_path / "x.pt"
    engine.save_checkpoint(path, model=model, iteration=1, config_hash="aaa", train_seconds=0.0)
    ckpt = torch.load(path, weights_only=True)
    torch.save({**ckpt, "version": engine.CHECKPOINT_VERSION + 1}, path)
    with pytest.raises(engine.CheckpointError, match=r"x\.pt: checkpoint version 2"):
        engine.load_checkpoint(path, expect_hash="aaa")


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_checkpoint_is_a_clear_error_naming_the_file(tmp_path, damage):
    path = tmp_path / "last.pt"
    if damage == "garbage":
        path.write_bytes(b"not a checkpoint at all")
    else:
        model, opt = fresh()
        engine.save_checkpoint(path, model=model, optimizer=opt, iteration=2, config_hash="h", train_seconds=0.0)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(engine.CheckpointError, match=str(path)):
        engine.load_checkpoint(path)


# ----------------------------------------------------------------------------- training loop

def test_interrupted_and_resumed_equals_uninterrupted_bit_for_bit(tmp_path):
    model_a, opt_a = fresh()
    engine.train_loop(model_a, opt_a, ToyData(), spec(), CPU, tmp_path / "a", log=lambda s: None)

    model_b, opt_b = fresh()
    with pytest.raises(RuntimeError, match="simulated crash"):   # dies while fetching iteration 5's batch
        engine.train_loop(model_b, opt_b, ToyData(crash_at_fetch=9), spec(), CPU, tmp_path / "b",
                          log=lambda s: None)
    ckpt = engine.load_checkpoint(tmp_path / "b" / "last.pt", expect_hash=spec().hash)
    assert ckpt["iteration"] == 4
    model_c, opt_c = fresh(seed=123)            # a different process state before resuming
    model_c.load_state_dict(ckpt["model"])
    opt_c.load_state_dict(ckpt["optimizer"])
    engine.set_rng_state(ckpt["rng"])
    engine.train_loop(model_c, opt_c, ToyData(), spec(), CPU, tmp_path / "b", start_iteration=4,
                      log=lambda s: None)
    for (name, a), c in zip(model_a.state_dict().items(), model_c.state_dict().values()):
        assert torch.equal(a, c), name


def test_training_changes_weights_and_lowers_the_loss_on_a_fixed_batch():
    model, opt = fresh()
    data = ToyData(n=2)
    batch = torch.stack([data[0]["image"], data[1]["image"]]), torch.stack([data[0]["label"], data[1]["label"]])

    def loss():
        model.eval()
        with torch.no_grad():
            return F.cross_entropy(model(batch[0]), batch[1]).item()
    before = loss()
    engine.train_loop(model, opt, data, spec(iterations=30, warmup_iters=0, checkpoint_interval=100,
                                             lr=3e-2), CPU, Path("/nonexistent-never-written"), log=lambda s: None)
    assert loss() < before


def test_nan_loss_stops_with_the_iteration_and_keeps_the_last_good_checkpoint(tmp_path):
    model, opt = fresh(nan_from_call=5)
    with pytest.raises(engine.NonFiniteLossError, match=r"iteration 5\b") as err:
        engine.train_loop(model, opt, ToyData(), spec(), CPU, tmp_path, log=lambda s: None)
    assert str(tmp_path / "last.pt") in str(err.value)
    ckpt = engine.load_checkpoint(tmp_path / "last.pt")
    assert ckpt["iteration"] == 4
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


# ----------------------------------------------------------------------------- evaluation

class ConstantClass(nn.Module):
    """Eval-mode model predicting class 2 everywhere, at a resolution unlike the label's."""

    def forward(self, x):
        logits = torch.zeros(x.shape[0], 19, 5, 7)
        logits[:, 2] = 1.0
        return logits


class EvalData(torch.utils.data.Dataset):
    def __len__(self):
        return 3

    def __getitem__(self, i):
        label = torch.full((6 + i, 10), 2, dtype=torch.int64)   # labels at their own sizes
        label[0] = 255
        label[1] = 4
        return {"image": torch.zeros(3, 4, 8), "label": label, "name": str(i)}


def test_evaluation_resizes_to_each_label_and_accumulates_one_matrix():
    cm = engine.evaluate_confusion(ConstantClass(), EvalData(), CPU)
    assert cm[2, 2] == sum((6 + i - 2) * 10 for i in range(3))
    assert cm[4, 2] == 30 and cm.sum() == cm[2, 2] + 30
