"""The grid: what it plans, result files, skip of finished cells, shards, errors, evaluate CLI."""
from __future__ import annotations

import json
import shutil

import pytest

from benchmark.data.classes import CLASS_NAMES
from benchmark.presets import get_preset
from benchmark.results import RunResult, load_results, read_result
from benchmark.run import main as run_main
from benchmark.run import claimed, longest_first, parse_shard, plan, run_grid, shard_jobs
from benchmark.settings import CORRUPTIONS
from conftest import REFERENCE_GRID


def test_plan_one_job_per_model_source_seed_with_every_cell_of_its_settings():
    jobs = plan(get_preset("test"), ["maskvim", "vmamba_linear", "vmamba_upernet"],
                ["cityscapes", "mapillary", "gta", "cityscapes-c"], [0, 1], ["default"])
    assert len(jobs) == 3 * 3 * 2                       # cityscapes-c shares the cityscapes job
    city = next(j for j in jobs if j.job.source == "cityscapes")
    cells = set(city.cells)
    assert ("cityscapes", "cityscapes") in cells and ("cityscapes-c", "cityscapes") in cells   # in-domain
    assert {t for s, t in cells if s == "cityscapes"} == {"cityscapes", "bdd", "mapillary", "gtav", "synthia"}
    assert {t for s, t in cells if s == "cityscapes-c"} == {"cityscapes", *(f"cityscapes_c/{c}/5" for c in CORRUPTIONS)}
    gta = next(j for j in jobs if j.job.source == "gtav")
    assert {t for _, t in gta.cells} == {"gtav", "cityscapes", "bdd", "mapillary", "synthia"}
    assert len({j.job.id for j in jobs}) == len(jobs)


def test_named_variants_bring_their_own_model():
    jobs = plan(get_preset("test"), ["maskvim"], ["gta"], [0], ["default", "linear_block_all"])
    assert [(j.job.model.name, j.job.variant) for j in jobs] == [("maskvim", "default"),
                                                             ("vmamba_linear", "linear_block_all")]
    assert jobs[1].job.to_dict()["model"]["switches"]["encoder_mask_stages"] == [1, 2, 3, 4]
    assert jobs[0].job.hash != plan(get_preset("test"), ["maskvim"], ["gta"], [0], ["mask_form_paper"])[0].job.hash


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_shards_partition_the_jobs(n):
    jobs = plan(get_preset("test"), ["maskvim", "vmamba_linear", "vmamba_upernet"],
                ["cityscapes", "mapillary", "gta"], [0, 1], ["default"])
    shards = [[j.job.id for j in shard_jobs(jobs, (i, n))] for i in range(n)]
    flat = [x for s in shards for x in s]
    assert sorted(flat) == sorted(j.job.id for j in jobs) and len(flat) == len(set(flat))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_bad_shard_and_unknown_names_are_clear_errors():
    for text in ("3/3", "1", "a/b", "-1/2"):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard(text)
    with pytest.raises(ValueError, match="valid models: maskvim, vmamba_linear, vmamba_upernet"):
        plan(get_preset("test"), ["maskvim", "segformer"], ["gta"], [0], ["default"])
    with pytest.raises(ValueError, match="valid settings: cityscapes, mapillary, gta, cityscapes-c"):
        plan(get_preset("test"), ["maskvim"], ["gtav"], [0], ["default"])
    with pytest.raises(ValueError, match="unknown variant 'nope'"):
        plan(get_preset("test"), ["maskvim"], ["gta"], [0], ["nope"])
    with pytest.raises(ValueError, match="valid presets: test, smoke, paper"):
        run_grid("fast")


def test_missing_data_root_names_it_and_how_to_create_it(tmp_path, capsys):
    missing = tmp_path / "no-data-here"
    rc = run_main(["--preset", "test", "--data-root", str(missing), "--results-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 2 and str(missing) in err and "python -m benchmark.data.synthetic --out" in err
    assert not (tmp_path / "r").exists()


def test_result_files_follow_the_schema(reference_grid):
    results = load_results(reference_grid)
    assert {(r.setting, r.target) for r in results} == {("cityscapes", t) for t in
                                                        ("cityscapes", "bdd", "mapillary", "gtav", "synthia")}
    preset = get_preset("test")
    for r in results:
        assert isinstance(r, RunResult) and r.model == "maskvim" and r.size == "micro" and r.variant == "default"
        assert r.source == "cityscapes" and r.iterations == preset.iterations
        assert list(r.per_class_iou) == list(CLASS_NAMES)
        assert len(r.confusion_matrix) == 19 and sum(map(sum, r.confusion_matrix)) > 0
        assert 0.0 <= r.miou <= 100.0 and r.params > 0 and r.scan_backend in ("ref", "cpu", "cuda")
        assert r.config["preset"] == "test" and r.config["schedule"]["iterations"] == preset.iterations
        assert r.config_hash == results[0].config_hash and r.train_seconds > 0 and r.eval_seconds > 0


def test_second_run_skips_finished_cells_and_redoes_only_missing_or_stale_ones(reference_grid, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(reference_grid, results)
    runs = results / "runs"
    mtimes = lambda: {p.name: p.stat().st_mtime_ns for p in runs.iterdir()}   # noqa: E731
    before = mtimes()
    data_root = load_results(results)[0].config["runtime"]["data_root"]
    outcome = run_grid(**REFERENCE_GRID, data_root=data_root, results_dir=results, log=lambda s: None)
    assert outcome["ran"] == [] and len(outcome["skipped"]) == 1
    assert mtimes() == before

    # one cell lost, one made by another config: only those two are evaluated again, without retraining
    missing, stale = sorted(p for p in runs.iterdir() if "__bdd__" in p.name or "__synthia__" in p.name)
    missing.unlink()
    doc = json.loads(stale.read_text())
    doc["config_hash"] = "0000000000000000"
    stale.write_text(json.dumps(doc))
    tampered = mtimes()
    (final,) = results.glob("checkpoints/*/final.pt")
    final_mtime = final.stat().st_mtime_ns
    outcome = run_grid(**REFERENCE_GRID, data_root=data_root, results_dir=results, log=lambda s: None)
    assert len(outcome["ran"]) == 1 and final.stat().st_mtime_ns == final_mtime
    after = mtimes()
    assert {n for n in after if after[n] != tampered.get(n)} == {missing.name, stale.name}
    assert read_result(stale).config_hash == read_result(runs / sorted(after)[0]).config_hash


def test_claimed_jobs_are_left_to_their_holder_and_free_again_when_it_lets_go(reference_grid, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(reference_grid, results)
    data_root = load_results(results)[0].config["runtime"]["data_root"]
    (job,) = plan(get_preset("test"), **{k: REFERENCE_GRID[k] for k in ("models", "settings", "seeds")},
                  variants=["default"], data_root=data_root)
    with claimed(results / "claims", job.job.id) as mine:   # another worker is on it
        assert mine
        outcome = run_grid(**REFERENCE_GRID, data_root=data_root, results_dir=results, log=lambda s: None,
                           claim_jobs=True)
        assert outcome["claimed_elsewhere"] == [job.job.id] and outcome["ran"] == outcome["skipped"] == []
        with claimed(results / "claims", job.job.id) as second:
            assert not second
    outcome = run_grid(**REFERENCE_GRID, data_root=data_root, results_dir=results, log=lambda s: None,
                       claim_jobs=True)
    assert outcome["skipped"] == [job.job.id] and "claimed_elsewhere" not in outcome


def test_claiming_workers_take_the_longest_jobs_first():
    jobs = plan(get_preset("test"), ["vmamba_linear", "maskvim", "vmamba_upernet"], ["gta", "cityscapes-c"], [0],
                ["default"])
    order = [(gj.job.model.name, gj.job.source) for gj in longest_first(jobs)]
    assert order == [("maskvim", "cityscapes"), ("maskvim", "gtav"), ("vmamba_upernet", "cityscapes"),
                     ("vmamba_upernet", "gtav"), ("vmamba_linear", "cityscapes"), ("vmamba_linear", "gtav")]


def test_evaluate_cli_fills_a_cityscapes_c_cell_and_redoes_it_when_the_images_are_regenerated(
        reference_grid, synthetic_root, tmp_path, capsys):
    from benchmark.data.cityscapes_c import MANIFEST_NAME
    from benchmark.data.cityscapes_c import main as cityscapes_c_main
    from benchmark.evaluate import main as evaluate_main

    data = tmp_path / "data"
    shutil.copytree(synthetic_root, data, ignore=shutil.ignore_patterns("cityscapes_c"))
    assert cityscapes_c_main(["--root", str(data), "--severity", "5", "--corruptions", "fog", "--workers", "1"]) in (0, None)
    results = tmp_path / "results"
    shutil.copytree(reference_grid, results)
    args = ["--preset", "test", "--model", "maskvim", "--source", "cityscapes", "--data-root", str(data),
            "--results-dir", str(results), "--settings", "cityscapes-c"]
    assert evaluate_main(args + ["--targets", "cityscapes_c/fog/5"]) == 0
    (cell,) = [r for r in load_results(results) if r.setting == "cityscapes-c"]
    assert cell.target == "cityscapes_c/fog/5" and cell.source == "cityscapes"
    reference = next(r for r in load_results(reference_grid) if r.target == "cityscapes")
    assert cell.config_hash == reference.config_hash and cell.iterations == reference.iterations
    assert cell.versions["cityscapes_c_data"].startswith("channel_order=rgb files=")   # which images
    assert "cityscapes_c_data" not in reference.versions
    capsys.readouterr()
    assert evaluate_main(args + ["--targets", "cityscapes_c/fog/5"]) == 0
    assert "0 result file(s) written" in capsys.readouterr().out            # same images: done

    # the images regenerated in place with the other channel order: same job, different inputs
    shutil.rmtree(data / "cityscapes_c")
    assert cityscapes_c_main(["--root", str(data), "--severity", "5", "--corruptions", "fog", "--workers", "1",
                              "--channel-order", "bgr-compat"]) in (0, None)
    assert evaluate_main(args + ["--targets", "cityscapes_c/fog/5"]) == 0
    assert "1 result file(s) written" in capsys.readouterr().out
    (cell,) = [r for r in load_results(results) if r.setting == "cityscapes-c"]
    assert cell.versions["cityscapes_c_data"].startswith("channel_order=bgr-compat files=")

    manifest = data / "cityscapes_c" / MANIFEST_NAME
    manifest.write_text("{not json")
    assert evaluate_main(args + ["--targets", "cityscapes_c/fog/5"]) == 2
    assert f"unreadable manifest {manifest}" in capsys.readouterr().err


def test_regenerated_synthetic_data_makes_finished_cells_stale_but_a_moved_copy_does_not(
        reference_grid, synthetic_root, tmp_path):
    from benchmark.data.synthetic import IN_PROGRESS_NAME, MANIFEST_NAME
    from benchmark.evaluate import cell_done

    def cells_done(root) -> list[bool]:
        (gj,) = plan(get_preset("test"), ["maskvim"], ["cityscapes"], [0], ["default"], data_root=str(root))
        return [cell_done(reference_grid, gj.job, setting, target) for setting, target in gj.cells]

    assert cells_done(synthetic_root) == [True] * 5
    moved = tmp_path / "moved"
    shutil.copytree(synthetic_root, moved)
    assert cells_done(moved) == [True] * 5                      # the data root's path is not the data
    manifest = json.loads((moved / MANIFEST_NAME).read_text())
    manifest["settings"]["seed"] += 1                           # what a regeneration with --seed 1 records
    (moved / MANIFEST_NAME).write_text(json.dumps(manifest))
    assert cells_done(moved) == [False] * 5
    (moved / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ValueError, match=f"{MANIFEST_NAME}: unreadable synthetic manifest"):
        cells_done(moved)
    (moved / MANIFEST_NAME).unlink()
    (moved / IN_PROGRESS_NAME).touch()
    with pytest.raises(ValueError, match="incomplete"):
        cells_done(moved)


def test_config_hash_ignores_runtime_details_but_not_the_recipe():
    from benchmark.presets import apply_overrides
    from benchmark.spec import JobSpec

    paper = get_preset("paper")
    one_gpu = JobSpec.from_preset(paper, model="maskvim", source="gtav", seed=0, world_size=1, data_root="/a")
    eight = JobSpec.from_preset(apply_overrides(paper, {"workers": 8}), model="maskvim", source="gtav", seed=0,
                                world_size=8, data_root="/b")
    assert one_gpu.runtime.grad_accumulation == 8 and eight.runtime.grad_accumulation == 1
    assert one_gpu.hash == eight.hash                              # same global batch of 16: same run
    other_lr = JobSpec.from_preset(apply_overrides(paper, {"lr": 1e-4}), model="maskvim", source="gtav", seed=0)
    assert other_lr.hash != one_gpu.hash
    assert one_gpu.to_dict()["model"]["switches"]["pretrained"] == "vssmtiny_dp01_ckpt_epoch_292.pth"
    assert JobSpec.from_dict(one_gpu.to_dict()) == one_gpu          # the stored config reads back exactly
    with pytest.raises(ValueError, match="not a multiple"):
        JobSpec.from_preset(paper, model="maskvim", source="gtav", seed=0, world_size=3)
    with pytest.raises(ValueError, match="unknown preset override 'iters'"):
        apply_overrides(paper, {"iters": 5})
