"""benchmark.numerics: portable numerics give the same weights whatever dispatch the environment asks for;
the numeric identity reaches checkpoints, result files and table notes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmark import numerics
from benchmark.errors import HarnessError
from benchmark.presets import get_preset
from benchmark.spec import JobSpec

REPO = Path(__file__).resolve().parents[1]
NO_AVX2 = not numerics._cpu_flags() >= {"avx2", "fma"}


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any numerics or thread variable (the test session runs portable)."""
    drop = set(numerics.portable_env()) | set(numerics.DISPATCH_VARS) | set(numerics.THREAD_VARS)
    return {**{k: v for k, v in os.environ.items() if k not in drop and k != numerics._REEXEC_MARK}, **extra}


def test_portable_env_pins_every_library_and_one_thread():
    env = numerics.portable_env(flags={"avx2", "fma"})
    assert env["MKL_CBWR"] == "COMPATIBLE"          # MKL's AVX2 branch is reproducible on Intel CPUs only
    assert env["DNNL_MAX_CPU_ISA"] == "AVX2" and env["ATEN_CPU_CAPABILITY"] == "avx2"
    assert env["MASKVIM_SCAN_CPU_ISA"] == "AVX2" and "X86_V4" in env["NPY_DISABLE_CPU_FEATURES"]
    assert all(env[v] == "1" for v in numerics.THREAD_VARS)
    assert "OPENCV_CPU_DISABLE" not in env          # OpenCV warns when told to disable what the CPU lacks
    assert numerics.portable_env(flags={"avx2", "fma", "avx512f"})["OPENCV_CPU_DISABLE"] == "AVX512F"


def test_portable_is_refused_where_it_means_nothing():
    with pytest.raises(HarnessError, match="aarch64.*--numerics native"):
        numerics.check_portable_supported(machine="aarch64")
    with pytest.raises(HarnessError, match="AVX2 and FMA"):
        numerics.check_portable_supported(machine="x86_64", flags={"sse2", "avx"})
    with pytest.raises(ValueError, match="--numerics 'fast'"):
        numerics.check_mode("fast")


def test_numerics_is_a_hashed_preset_field_and_old_configs_read_as_native():
    test, smoke, paper = (get_preset(n) for n in ("test", "smoke", "paper"))
    assert (test.numerics, smoke.numerics, paper.numerics) == ("portable", "portable", "native")
    job = JobSpec.from_preset(test, model="vmamba_linear", source="gtav", seed=0)
    from benchmark.presets import apply_overrides

    native = JobSpec.from_preset(apply_overrides(test, {"numerics": "native"}), model="vmamba_linear",
                                 source="gtav", seed=0)
    assert job.to_dict()["numerics"] == "portable" and native.to_dict()["numerics"] == "native"
    assert job.hash != native.hash
    old = job.to_dict()
    del old["numerics"]                               # a config written before the field existed
    assert JobSpec.from_dict(old).numerics == "native"
    with pytest.raises(ValueError, match="--numerics"):
        apply_overrides(test, {"numerics": "exact"})


def test_identity_lines_of_old_and_resumed_results():
    assert numerics.result_identity({"torch": "2.13.0"}) == numerics.NOT_RECORDED
    here = numerics.identity("portable")
    assert here["numerics"] == "portable" and here["intra_op_threads"] == "1"
    assert here["env.MKL_CBWR"] == "COMPATIBLE" and here["cpu_capability"] == "AVX2"
    line = here[numerics.IDENTITY]
    assert line.startswith("numerics portable: ") and "MKL_CBWR=COMPATIBLE" in line and "1 thread(s)" in line
    assert numerics.result_identity({**here, numerics.TRAIN_IDENTITY: line}) == line
    mixed = numerics.result_identity({**here, numerics.TRAIN_IDENTITY: "numerics native: other"})
    assert mixed == f"trained under numerics native: other; evaluated under {line}"


def test_a_process_without_the_environment_refuses_a_portable_job():
    code = ("import torch\nfrom benchmark import numerics\n"
            "try:\n    numerics.require('portable')\nexcept numerics.HarnessError as e:\n    print(e)\n"
            "try:\n    numerics.apply('portable')\nexcept numerics.HarnessError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], env=clean_env(), cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.splitlines()[:2]
    assert "not started with" in first and "MKL_CBWR='COMPATIBLE'" in first
    assert "before torch" in second


def _train(root: Path, out: Path, mode: str, env: dict[str, str]) -> dict:
    cmd = [sys.executable, "-m", "benchmark.train", "--preset", "smoke", "--numerics", mode, "--model", "maskvim",
           "--source", "gtav", "--iters", "12", "--warmup-iters", "2", "--checkpoint-interval", "6",
           "--data-root", str(root), "--results-dir", str(out)]
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (final,) = out.glob("checkpoints/*/final.pt")
    return torch.load(final, map_location="cpu", weights_only=True)


@pytest.mark.slow
@pytest.mark.skipif(NO_AVX2, reason="portable numerics needs an x86-64 CPU with AVX2 and FMA")
def test_portable_training_is_bit_exact_whatever_dispatch_the_environment_asks_for(synthetic_root, tmp_path):
    flags = numerics._cpu_flags()
    top_aten = "avx512" if "avx512f" in flags else "avx2"
    # one process asks for this CPU's highest levels, MKL's default dispatch and two threads; the other for
    # AVX2 everywhere, MKL's AVX2 branch and one thread
    highest = clean_env(DNNL_MAX_CPU_ISA="ALL", ATEN_CPU_CAPABILITY=top_aten, OMP_NUM_THREADS="2")
    avx2 = clean_env(DNNL_MAX_CPU_ISA="AVX2", ATEN_CPU_CAPABILITY="avx2", MKL_CBWR="AVX2", OMP_NUM_THREADS="1")
    a = _train(synthetic_root, tmp_path / "portable_a", "portable", highest)
    b = _train(synthetic_root, tmp_path / "portable_b", "portable", avx2)
    assert a["model"].keys() == b["model"].keys()
    unequal = [k for k in a["model"] if not torch.equal(a["model"][k], b["model"][k])]
    assert unequal == [], f"portable numerics differ in {len(unequal)} tensors, e.g. {unequal[:3]}"
    assert a["numeric_identity"] == b["numeric_identity"] and len(a["numeric_identity"]) == 1
    assert a["numeric_identity"][0].startswith("numerics portable: ")

    # native mode keeps what each environment asks for: allowed to differ (it does on an AVX-512 CPU)
    na = _train(synthetic_root, tmp_path / "native_a", "native", highest)
    nb = _train(synthetic_root, tmp_path / "native_b", "native", avx2)
    differ = sum(not torch.equal(na["model"][k], nb["model"][k]) for k in na["model"])
    print(f"native numerics: {differ} of {len(na['model'])} tensors differ between the two environments")
    assert "2 thread(s)" in na["numeric_identity"][0] and "DNNL_MAX_CPU_ISA=ALL" in na["numeric_identity"][0]
