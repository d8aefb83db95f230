"""The model registry: a family registered from outside the suite runs through the whole harness."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmark import complexity, models, run, table
from benchmark.results import load_results
from maskvim import registry


class Toy(nn.Module):
    """The smallest model of the contract: a 3x3 conv to the classes (train: dict; eval: input-sized logits)."""

    def __init__(self, num_classes: int, width: int):
        super().__init__()
        self.body = nn.Conv2d(3, width, 3, padding=1)
        self.cls = nn.Conv2d(width, num_classes, 1)

    def forward(self, images):
        logits = self.cls(torch.relu(self.body(images)))
        return {"logits": logits} if self.training else logits

    def compute_loss(self, outputs, labels):
        return {"loss": F.cross_entropy(outputs["logits"], labels, ignore_index=255)}


@pytest.fixture()
def toy_family():
    @registry.register_model("toy", sizes=("micro",), defaults={"width": 4}, display_name="ToyNet", backbone="Conv")
    def build(size, num_classes, width):
        return Toy(num_classes, width)

    yield "toy"
    registry.unregister_model("toy")


def test_registry_answers_names_sizes_and_defaults(toy_family):
    assert models.list_models()[:3] == ["maskvim", "vmamba_linear", "vmamba_upernet"]
    assert "toy" in models.list_models() and models.model_sizes("toy") == ("micro",)
    assert models.default_switches("toy", "micro") == {"width": 4}
    assert models.default_switches("maskvim", "tiny")["decoder_channels"] == 512
    assert isinstance(models.build_model("toy", "micro", width=2).body, nn.Conv2d)
    with pytest.raises(TypeError, match="unknown switch.*depth.*toy"):
        models.build_model("toy", "micro", depth=3)
    with pytest.raises(ValueError, match="apply to maskvim only, not toy"):
        models.build_model("toy", "micro", decoder="mask_d")
    with pytest.raises(ValueError, match="unknown size 'tiny' for model 'toy'"):
        models.build_model("toy", "tiny")
    with pytest.raises(ValueError, match="registered already"):
        registry.register_model("toy", sizes=("micro",))(lambda size, num_classes: None)


def test_maskvim_imports_nothing_from_baselines():
    import subprocess
    import sys

    code = ("import sys, maskvim, maskvim.builder, maskvim.registry; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('baselines', 'benchmark', 'torch')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"      # registering MaskViM imports neither the baselines, the harness nor torch


def test_a_registered_family_runs_through_grid_complexity_and_table(toy_family, synthetic_root, tmp_path, capsys):
    assert run.main(["--dry-run", "--preset", "test", "--models", "toy", "--settings", "gta"]) == 0
    listed = capsys.readouterr().out
    assert "toy-micro__default__gtav__seed0__" in listed and "maskvim" not in listed

    assert complexity.main(["--models", "toy", "--size", "micro", "--input", "32", "64", "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)[0]
    assert record["model"] == "toy" and record["params"] == 3 * 4 * 9 + 4 + 4 * 19 + 19
    assert record["gmacs"] == pytest.approx((3 * 4 * 9 + 4 * 19) * 32 * 64 / 1e9)

    outcome = run.run_grid("test", models=["toy"], settings=["gta"], data_root=synthetic_root, results_dir=tmp_path,
                           log=lambda s: None)
    assert len(outcome["ran"]) == 1
    results = load_results(tmp_path)
    assert {r.target for r in results} == {"gtav", "cityscapes", "bdd", "mapillary", "synthia"}
    assert all(r.scan_backend == "none" and "crop_size" not in r.config["model"]["switches"] for r in results)
    text = table.render(table.setting_table("gta", results), "md")
    assert "| ToyNet (ours) | Conv-micro |" in text
