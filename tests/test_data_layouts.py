"""Release layouts, loaders, bad inputs, the prepare cache and the check CLI, on tiny files written here.

The files are written by this test (not by the synthetic writer), in each release's layout and encoding,
so a layout bug cannot hide behind a matching writer bug.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.data import layouts
from benchmark.data.check import check_dataset
from benchmark.data.check import main as check_main
from benchmark.data.datasets import build_dataset
from benchmark.data.labels import LabelValueError, label_spec
from benchmark.data.layouts import LayoutError, list_samples
from benchmark.data.prepare import main as prepare_main
from benchmark.data.prepare import prepare

H, W = 12, 20
# a train-id pattern holding several classes and ignore; each dataset stores it in its own raw ids
TRAIN_IDS = np.tile(np.array([0, 1, 2, 8, 10, 13, 255, 11, 18, 5], np.uint8).repeat(2), (H, 1))
VARIANTS = ["cityscapes", "bdd", "bdd-seg", "mapillary", "mapillary-v2", "gtav", "synthia"]


def _png(path: Path, array: np.ndarray, palette: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(array)
    if palette:
        im = Image.frombytes("P", (array.shape[1], array.shape[0]), array.tobytes())
        im.putpalette([v % 256 for v in range(768)])
    im.save(path, format="PNG")


def _jpg(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="JPEG", quality=95)


def write_pair(root: Path, variant: str, split: str, name: str, train_ids: np.ndarray = TRAIN_IDS) -> tuple[Path, Path]:
    """Write one image / label pair of `variant` in its release layout; returns (image, label) paths."""
    dataset_id = variant.split("-")[0]
    ds = root / dataset_id
    raw = label_spec(dataset_id).encode(train_ids)
    rgb = np.random.default_rng(abs(hash(name)) % 2**32).integers(0, 255, (*train_ids.shape, 3), dtype=np.uint8)
    if variant == "cityscapes":
        city = name.split("_")[0]
        img, lbl = (ds / f"leftImg8bit/{split}/{city}/{name}_leftImg8bit.png",
                    ds / f"gtFine/{split}/{city}/{name}_gtFine_labelIds.png")
        _png(img, rgb), _png(lbl, raw)
    elif variant == "bdd":
        img, lbl = ds / f"images/10k/{split}/{name}.jpg", ds / f"labels/sem_seg/masks/{split}/{name}.png"
        _jpg(img, rgb), _png(lbl, raw)
    elif variant == "bdd-seg":
        img, lbl = ds / f"images/{split}/{name}.jpg", ds / f"labels/{split}/{name}_train_id.png"
        _jpg(img, rgb), _png(lbl, raw)
    elif variant.startswith("mapillary"):
        folder = {"train": "training", "val": "validation"}[split]
        labels_dir = f"{folder}/v1.2/labels" if variant == "mapillary-v2" else f"{folder}/labels"
        img, lbl = ds / f"{folder}/images/{name}.jpg", ds / f"{labels_dir}/{name}.png"
        _jpg(img, rgb), _png(lbl, raw, palette=True)
    elif variant == "gtav":
        img, lbl = ds / f"images/{name}.png", ds / f"labels/{name}.png"
        _png(img, rgb), _png(lbl, raw, palette=True)
    else:  # synthia: 16-bit, class id in the first channel (cv2 writes BGR)
        img, lbl = ds / f"RGB/{name}.png", ds / f"GT/LABELS/{name}.png"
        _png(img, rgb)
        lbl.parent.mkdir(parents=True, exist_ok=True)
        bgr = np.stack([np.zeros_like(raw), np.full_like(raw, 7), raw], axis=-1)
        assert cv2.imwrite(str(lbl), bgr)
    if dataset_id in ("gtav", "synthia"):
        lst = ds / "splits" / f"{dataset_id}_split_{split}.txt"
        lst.parent.mkdir(parents=True, exist_ok=True)
        with open(lst, "a") as f:
            f.write(f"{name}.png\n")
    return img, lbl


def names(variant: str, split: str, n: int) -> list[str]:
    if variant == "cityscapes":
        return [f"{'aachen' if split == 'train' else 'lindau'}_{i:06d}_000019" for i in range(n)]
    if variant in ("gtav", "synthia"):
        width = 5 if variant == "gtav" else 7
        return [f"{i + (0 if split == 'train' else 100):0{width}d}" for i in range(n)]
    return [f"{split}{i:04d}" for i in range(n)]


def make_release(root: Path, variant: str, n: int = 2) -> None:
    for split in ("train", "val"):
        for name in names(variant, split, n):
            write_pair(root, variant, split, name)


def expected_train_ids(dataset_id: str) -> np.ndarray:
    spec = label_spec(dataset_id)
    return spec.to_train_ids(spec.encode(TRAIN_IDS))


# ------------------------------------------------------------------------------------------ layouts
@pytest.mark.parametrize("variant", VARIANTS)
def test_each_release_layout_loads(tmp_path, variant):
    dataset_id = variant.split("-")[0]
    make_release(tmp_path, variant)
    ds = build_dataset(dataset_id, "val", tmp_path, train=False)
    assert len(ds) == 2
    item = ds[0]
    assert item["image"].dtype.is_floating_point and tuple(item["image"].shape) == (3, H, W)
    assert item["label"].dtype == torch.int64
    np.testing.assert_array_equal(item["label"].numpy(), expected_train_ids(dataset_id))
    assert item["name"].endswith(sorted(names(variant, "val", 2))[0])
    train = build_dataset(dataset_id, "train", tmp_path, train=True, crop_size=(8, 8), base_scale=(H, W))
    assert tuple(train[0]["image"].shape) == (3, 8, 8) and tuple(train[0]["label"].shape) == (8, 8)


def test_missing_dataset_folder_is_named(tmp_path):
    with pytest.raises(LayoutError, match=str(tmp_path / "cityscapes")):
        build_dataset("cityscapes", "val", tmp_path, train=False)
    (tmp_path / "cityscapes" / "leftImg8bit" / "val").mkdir(parents=True)
    with pytest.raises(LayoutError, match="gtFine"):
        build_dataset("cityscapes", "val", tmp_path, train=False)


def test_image_without_label_and_label_without_image_are_named(tmp_path):
    make_release(tmp_path, "bdd")
    img, lbl = write_pair(tmp_path, "bdd", "val", "lonely")
    lbl.unlink()
    with pytest.raises(LayoutError, match="images without label.*lonely.jpg"):
        list_samples(tmp_path, "bdd", "val")
    img.unlink()
    _, lbl2 = write_pair(tmp_path, "bdd", "val", "orphan")
    Path(tmp_path / "bdd/images/10k/val/orphan.jpg").unlink()
    with pytest.raises(LayoutError, match="labels without image.*orphan.png"):
        list_samples(tmp_path, "bdd", "val")


def test_truncated_files_and_bad_values_and_size_mismatch_are_named(tmp_path):
    make_release(tmp_path, "gtav", n=3)
    samples = list_samples(tmp_path, "gtav", "val")
    ds = build_dataset("gtav", "val", tmp_path, train=False)  # files go bad after the dataset is built
    data = samples[0].image.read_bytes()
    samples[0].image.write_bytes(data[: len(data) // 2])                 # truncated image
    bad = np.full((H, W), 40, np.uint8)                                   # 40 is no Cityscapes id
    _png(samples[1].label, bad, palette=True)
    _png(samples[2].image, np.zeros((H + 1, W, 3), np.uint8))             # size mismatch
    with pytest.raises(OSError, match=str(samples[0].image)):
        ds[0]
    with pytest.raises(LabelValueError, match=rf"{samples[1].label}.*\[40\]"):
        ds[1]
    with pytest.raises(ValueError, match="size mismatch") as err:
        ds[2]
    assert str(samples[2].image) in str(err.value) and str(samples[2].label) in str(err.value)
    # building the dataset now stops at once, naming the mismatched pair (from the file headers)
    with pytest.raises(ValueError, match="1 image/label pairs differ in size") as err:
        build_dataset("gtav", "val", tmp_path, train=False)
    assert str(samples[2].image) in str(err.value) and str(samples[2].label) in str(err.value)


def test_missing_split_list_names_both_places(tmp_path, monkeypatch):
    monkeypatch.setattr(layouts, "PACKAGE_SPLITS_DIR", tmp_path / "pkg_splits")
    make_release(tmp_path, "synthia")
    (tmp_path / "synthia/splits/synthia_split_val.txt").unlink()
    with pytest.raises(LayoutError) as err:
        build_dataset("synthia", "val", tmp_path, train=False)
    assert "synthia_split_val.txt" in str(err.value) and "pkg_splits" in str(err.value)
    # a list dropped into the package folder is used for every data root
    (tmp_path / "pkg_splits").mkdir()
    (tmp_path / "pkg_splits/synthia_split_val.txt").write_text("# RobustNet format\n0000100.png\n")
    assert [s.name for s in list_samples(tmp_path, "synthia", "val")] == ["0000100"]


def test_split_list_naming_a_missing_file_is_an_error(tmp_path):
    make_release(tmp_path, "gtav")
    with open(tmp_path / "gtav/splits/gtav_split_val.txt", "a") as f:
        f.write("09999.png\n")
    with pytest.raises(LayoutError, match="09999"):
        list_samples(tmp_path, "gtav", "val")


def test_cityscapes_c_pairs_corrupted_images_with_val_labels(tmp_path):
    make_release(tmp_path, "cityscapes")
    with pytest.raises(LayoutError, match="cityscapes_c"):
        build_dataset("cityscapes", "val", tmp_path, train=False, corruption="fog", severity=5)
    for s in list_samples(tmp_path, "cityscapes", "val"):
        dst = tmp_path / "cityscapes_c/fog/5" / s.image.parent.name / s.image.name
        _png(dst, np.full((H, W, 3), 200, np.uint8))
    ds = build_dataset("cityscapes", "val", tmp_path, train=False, corruption="fog", severity=5)
    item = ds[0]
    assert float(item["image"].std(dim=(1, 2)).max()) == 0.0  # the corrupted (flat) image, not the original
    np.testing.assert_array_equal(item["label"].numpy(), expected_train_ids("cityscapes"))
    with pytest.raises(ValueError, match="corruption"):
        build_dataset("bdd", "val", tmp_path, train=False, corruption="fog")


# ------------------------------------------------------------------------------------------ prepare
def _digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and layouts.CACHE_DIRNAME not in p.parts}


def test_prepare_is_idempotent_resumable_and_leaves_originals_untouched(tmp_path):
    make_release(tmp_path, "synthia", n=3)
    before = _digest(tmp_path / "synthia")
    first = prepare(tmp_path, "synthia", ["train", "val"])
    assert (first.converted, first.skipped) == (6, 0)
    assert _digest(tmp_path / "synthia") == before
    assert prepare(tmp_path, "synthia", ["train", "val"]).converted == 0
    # an interrupted run: one cache file missing, one truncated, a stray temp file
    cached = sorted((tmp_path / "synthia" / layouts.CACHE_DIRNAME).rglob("*.png"))
    cached[0].unlink()
    cached[1].write_bytes(cached[1].read_bytes()[:30])
    (cached[2].parent / f".{cached[2].name}.tmp.abc.png").write_bytes(b"partial")
    again = prepare(tmp_path, "synthia", ["train", "val"])
    assert (again.converted, again.skipped) == (2, 4)
    assert not list(cached[2].parent.glob(".*.tmp.*"))
    for s in list_samples(tmp_path, "synthia", "val"):
        cache = layouts.cache_path(tmp_path, "synthia", s.label)
        np.testing.assert_array_equal(np.asarray(Image.open(cache)), expected_train_ids("synthia"))


def test_loader_uses_fresh_cache_and_ignores_stale_one(tmp_path):
    make_release(tmp_path, "cityscapes")
    assert prepare_main(["--dataset", "cityscapes", "--root", str(tmp_path)]) == 0
    sample = list_samples(tmp_path, "cityscapes", "val")[0]
    cache = layouts.cache_path(tmp_path, "cityscapes", sample.label)
    _png(cache, np.full((H, W), 7, np.uint8))  # a recognisable (fresh) cache content
    ds = build_dataset("cityscapes", "val", tmp_path, train=False)
    assert (ds[0]["label"] == 7).all()
    old = sample.label.stat().st_mtime_ns - 10**9
    os.utime(cache, ns=(old, old))             # now older than its source: ignored
    np.testing.assert_array_equal(ds[0]["label"].numpy(), expected_train_ids("cityscapes"))


def test_prepare_cli_rejects_missing_dataset(tmp_path, capsys):
    with pytest.raises(SystemExit):
        prepare_main(["--dataset", "gtav", "--root", str(tmp_path)])
    assert "gtav" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ check
def test_check_reports_each_kind_of_problem(tmp_path):
    make_release(tmp_path, "gtav", n=4)
    val = list_samples(tmp_path, "gtav", "val")
    assert check_dataset(tmp_path, "gtav").ok
    val[0].label.unlink()                                              # image without label
    _png(val[1].label, np.full((H, W), 99, np.uint8), palette=True)     # values outside the id set
    _png(val[2].image, np.zeros((H, W + 2, 3), np.uint8))              # size mismatch
    val[3].image.write_bytes(val[3].image.read_bytes()[:40])           # truncated image
    with open(tmp_path / "gtav/splits/gtav_split_val.txt", "a") as f:
        f.write("00000.png\n")                                         # also in the train list
    report = check_dataset(tmp_path, "gtav", expected={"train": 4, "val": 5})
    text = "\n".join(report.problems)
    assert "images without label" in text and str(val[0].image) in text
    assert "[99]" in text and str(val[1].label) in text
    assert "size mismatch" in text and str(val[2].image) in text
    assert str(val[3].image) in text
    assert "another split" in text
    assert "val: 4 image/label pairs, expected 5" in text  # 3 intact + the one listed twice


def test_check_cli_exit_codes(tmp_path, capsys):
    assert check_main(["--root", str(tmp_path / "nowhere")]) == 1
    make_release(tmp_path, "bdd-seg", n=2)
    # real-data root: counts are compared with the official sizes, so 2 images are a problem
    assert check_main(["--data-root", str(tmp_path), "--datasets", "bdd"]) == 1
    assert "expected 1000" in capsys.readouterr().out
    # named but absent datasets are problems; absent unnamed ones are only noted
    assert check_main(["--root", str(tmp_path), "--datasets", "synthia"]) == 1


def test_check_cityscapes_c_mirrors_val(tmp_path):
    from benchmark.data.check import check_cityscapes_c

    make_release(tmp_path, "cityscapes", n=3)
    val = list_samples(tmp_path, "cityscapes", "val")
    for s in val:
        _png(tmp_path / "cityscapes_c/fog/5" / s.image.parent.name / s.image.name, np.zeros((H, W, 3), np.uint8))
    assert check_cityscapes_c(tmp_path).ok
    (tmp_path / "cityscapes_c/fog/5" / val[0].image.parent.name / val[0].image.name).unlink()
    _png(tmp_path / "cityscapes_c/fog/5" / val[1].image.parent.name / val[1].image.name, np.zeros((H, 3, 3), np.uint8))
    text = "\n".join(check_cityscapes_c(tmp_path).problems)
    assert "without a corrupted version" in text and str(val[0].image) in text
    assert "size mismatch" in text and val[1].image.name in text


def test_check_accepts_any_listed_count(tmp_path):
    make_release(tmp_path, "gtav", n=2)
    assert check_dataset(tmp_path, "gtav", expected={"train": (5, 2), "val": 2}).ok
    report = check_dataset(tmp_path, "gtav", expected={"train": (12403, 12388), "val": 2})
    assert report.problems == ["train: 2 image/label pairs, expected 12403 or 12388"]


def test_check_cityscapes_c_verifies_the_generator_manifest(tmp_path):
    from benchmark.data.check import check_cityscapes_c
    from benchmark.data.cityscapes_c import main as cityscapes_c_main

    big = np.tile(TRAIN_IDS, (3, 2))  # the corruptions need at least 32x32 pixels
    for name in names("cityscapes", "val", 2):
        write_pair(tmp_path, "cityscapes", "val", name, big)
    assert cityscapes_c_main(["--root", str(tmp_path), "--severity", "5", "--corruptions", "brightness",
                              "--workers", "1"]) == 0
    report = check_cityscapes_c(tmp_path)
    assert report.ok, report.problems
    assert report.counts == {"brightness/5": 2}
    outputs = sorted((tmp_path / "cityscapes_c/brightness/5").rglob("*_leftImg8bit.png"))
    outputs[0].write_bytes(outputs[0].read_bytes() + b"x")                       # altered after generation
    val = list_samples(tmp_path, "cityscapes", "val")
    _png(val[1].image, np.zeros((*big.shape, 3), np.uint8))                      # source changed since
    text = "\n".join(check_cityscapes_c(tmp_path).problems)
    assert f"{outputs[0]}: content differs from its manifest checksum" in text
    assert "changed since cityscapes_c was generated" in text and str(val[1].image) in text
    outputs[0].unlink()
    text = "\n".join(check_cityscapes_c(tmp_path).problems)
    assert "recorded in" in text and "but missing" in text and outputs[0].name in text
    assert check_cityscapes_c(tmp_path, quick=True).problems  # the missing file is found without hashing too
    # the loader warns that a source is newer than the corrupted set (cheap, by modification time)
    newer = (tmp_path / "cityscapes_c/manifest.json").stat().st_mtime_ns + 10**9
    os.utime(val[1].image, ns=(newer, newer))
    outputs[0].write_bytes(outputs[1].read_bytes())  # present again (content irrelevant to the pairing)
    with pytest.warns(RuntimeWarning, match="may be stale"):
        build_dataset("cityscapes", "val", tmp_path, train=False, corruption="brightness", severity=5)
