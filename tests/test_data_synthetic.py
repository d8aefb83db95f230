"""The synthetic writer: real layouts and encodings, byte-identical output, class coverage, idempotence."""
from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from benchmark.data import synthetic
from benchmark.data.check import main as check_main
from benchmark.data.datasets import build_dataset
from benchmark.data.labels import DATASET_IDS
from benchmark.data.layouts import list_samples

TINY = ["--images", "2", "--val-images", "4", "--size", "48", "96"]


def _digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("syn") / "a"
    assert synthetic.main(["--out", str(out), *TINY, "--seed", "3", "--workers", "1"]) == 0
    return out


def test_same_seed_gives_identical_bytes_whatever_the_worker_count(tiny_root, tmp_path):
    other = tmp_path / "b"
    assert synthetic.main(["--out", str(other), *TINY, "--seed", "3", "--workers", "2"]) == 0
    assert _digests(tiny_root) == _digests(other)
    # another seed renders other scenes
    jobs = {seed: synthetic.plan(tmp_path, synthetic.Settings(seed, 2, 4, 48, 96), ("cityscapes",))[0]
            for seed in (3, 4)}
    assert not np.array_equal(synthetic._render(jobs[3])[0], synthetic._render(jobs[4])[0])


def test_every_domain_loads_through_the_real_loaders_and_check_passes(tiny_root, capsys):
    for dataset_id in DATASET_IDS:
        ds = build_dataset(dataset_id, "val", tiny_root, train=False, eval_short_side=32)
        assert len(ds) == 4
        item = ds[0]
        assert item["image"].shape[1] == 32 or item["image"].shape[2] == 32
        assert item["label"].max() <= 255
        train = build_dataset(dataset_id, "train", tiny_root, train=True, crop_size=(16, 32), base_scale=(48, 96))
        assert len(train) == 2 and train[0]["image"].shape == (3, 16, 32)
    assert check_main(["--root", str(tiny_root)]) == 0
    assert "synthetic" in capsys.readouterr().out


def test_each_domain_uses_its_release_encoding(tiny_root):
    syn = list_samples(tiny_root, "synthia", "val")[0].label
    raw = cv2.imread(str(syn), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.ndim == 3
    for sample in list_samples(tiny_root, "synthia", "val"):
        ids = cv2.imread(str(sample.label), cv2.IMREAD_UNCHANGED)[:, :, 2]
        assert not np.isin(ids, [16, 18, 20]).any()  # no terrain / truck / train in SYNTHIA
    gta = Image.open(list_samples(tiny_root, "gtav", "val")[0].label)
    assert gta.mode == "P"
    mapillary = list_samples(tiny_root, "mapillary", "train") + list_samples(tiny_root, "mapillary", "val")
    assert all(s.image.suffix == ".jpg" for s in mapillary)
    assert len({Image.open(s.image).size for s in mapillary}) > 1  # mixed sizes
    assert Image.open(list_samples(tiny_root, "cityscapes", "val")[0].label).mode == "L"
    # GTAV / SYNTHIA split lists partition one numbered folder, in RobustNet's format
    for dataset_id, width in (("gtav", 5), ("synthia", 7)):
        lists = {s: (tiny_root / dataset_id / "splits" / f"{dataset_id}_split_{s}.txt").read_text().split()
                 for s in ("train", "val")}
        assert not set(lists["train"]) & set(lists["val"])
        assert all(len(n) == width + 4 and n.endswith(".png") for n in lists["train"] + lists["val"])


def test_rerun_is_a_no_op_and_force_rewrites(tiny_root):
    label = list_samples(tiny_root, "bdd", "val")[0].label
    before = label.stat().st_mtime_ns
    assert synthetic.main(["--out", str(tiny_root), *TINY, "--seed", "3", "--workers", "1"]) == 0
    assert label.stat().st_mtime_ns == before


def _renderer_without(missing: int):
    def render(domain, rng, h, w):
        ids = np.zeros((h, w), np.uint8)
        classes = [c for c in range(19) if c != missing and not (domain == "synthia" and c in (9, 14, 16))]
        for k, c in enumerate(classes):
            ids[:, k * w // len(classes):] = c
        return rng.integers(0, 256, (h, w, 3), dtype=np.uint8), ids
    return render


def test_missing_val_class_fails_loudly_without_manifest(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(synthetic, "render_scene", _renderer_without(6))  # never a traffic light
    out = tmp_path / "bad"
    assert synthetic.main(["--out", str(out), "--images", "1", "--val-images", "1", "--size", "32", "64",
                           "--workers", "1"]) == 1
    err = capsys.readouterr().err
    assert "traffic light" in err and "cityscapes" in err
    assert not (out / synthetic.MANIFEST_NAME).exists()
    monkeypatch.setattr(synthetic, "render_scene", _renderer_without(255))
    assert synthetic.main(["--out", str(out), "--images", "1", "--val-images", "1", "--size", "32", "64",
                           "--workers", "1"]) == 0
    assert (out / synthetic.MANIFEST_NAME).exists()


def test_cli_rejects_bad_flags(tmp_path):
    with pytest.raises(SystemExit):
        synthetic.main(["--out", str(tmp_path), "--images", "0"])
    with pytest.raises(SystemExit):
        synthetic.main(["--out", str(tmp_path), "--size", "8", "8"])


def test_regeneration_replaces_old_output_but_never_foreign_data(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(synthetic, "render_scene", _renderer_without(255))
    out = tmp_path / "root"
    small = ["--out", str(out), "--val-images", "1", "--size", "32", "64", "--workers", "1"]
    assert synthetic.main([*small, "--images", "3"]) == 0
    assert synthetic.main([*small, "--images", "1"]) == 0      # fewer images: no stale files left behind
    assert len(list_samples(out, "cityscapes", "train")) == 1
    assert check_main(["--root", str(out)]) == 0
    foreign = tmp_path / "real"
    (foreign / "cityscapes").mkdir(parents=True)
    assert synthetic.main(["--out", str(foreign), "--images", "1", "--val-images", "1", "--workers", "1"]) == 1
    assert "not written by benchmark.data.synthetic" in capsys.readouterr().err
    assert (foreign / "cityscapes").is_dir()


def test_domains_flag_writes_only_those_and_their_files_match_the_full_run(tiny_root, tmp_path, capsys):
    only = tmp_path / "city"
    assert synthetic.main(["--out", str(only), *TINY, "--seed", "3", "--workers", "1", "--domains", "cityscapes"]) == 0
    assert sorted(p.name for p in only.iterdir() if p.is_dir()) == ["cityscapes"]
    full = {k: v for k, v in _digests(tiny_root).items() if k.startswith("cityscapes/")}
    assert {k: v for k, v in _digests(only).items() if k.startswith("cityscapes/")} == full
    assert check_main(["--root", str(only)]) == 0
    before = _digests(only)
    assert synthetic.main(["--out", str(only), *TINY, "--seed", "3", "--workers", "1", "--domains", "cityscapes"]) == 0
    assert _digests(only) == before                       # complete: nothing rewritten
    # asking for more domains than were written regenerates
    assert not synthetic.manifest_matches(only, synthetic.Settings(3, 2, 4, 48, 96), DATASET_IDS)
    with pytest.raises(SystemExit):
        synthetic.main(["--out", str(tmp_path / "x"), "--domains", "kitti"])
    assert "invalid choice: 'kitti'" in capsys.readouterr().err
