"""Numerics modes and the numeric identity of a machine (torch-free at import).

The math libraries under torch pick their code paths from the CPU they run on: MKL's GEMM, oneDNN's
convolutions, ATen's vectorised kernels (AVX2 or AVX-512), NumPy's and OpenCV's SIMD dispatch (the data
pipeline), and the thread count that splits every parallel reduction. Two machines running the same job
therefore round differently, and training from scratch grows the last-bit differences into other models.

    portable  every library pinned to a code path that any x86-64 CPU with AVX2 (and FMA) runs alike:
              MKL's conditional numerical reproducibility on its vendor-neutral branch (MKL_CBWR=COMPATIBLE;
              its AVX2 branch is reproducible on Intel CPUs only), oneDNN capped at AVX2, ATen at AVX2, our
              scan kernel built for AVX2, NumPy's and OpenCV's AVX-512 dispatch off, one intra-op thread
              (more processes, not more threads, use more cores). Default of the test and smoke presets.
    native    whatever the machine and the caller's environment give (fastest; the paper preset).

These variables are read once, when a library first loads or first runs, so they must be in the process
environment before torch (or NumPy, or OpenCV) is imported: ``enter(mode, program=True)`` re-executes a
command-line program with them when they are not; ``require`` refuses a job in a process where they are
not; ``apply`` sets them in a process that has not imported those libraries yet (the test suite's
conftest). ``identity`` is what every result records in ``versions``; ``identity_line`` its one-line form
that tables group rows by.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
from typing import Mapping

from benchmark.errors import HarnessError, guarded

MODES = ("portable", "native")
# dispatch variables recorded in every result, whatever the mode
DISPATCH_VARS = ("MKL_CBWR", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MASKVIM_SCAN_CPU_ISA",
                 "NPY_DISABLE_CPU_FEATURES", "OPENCV_CPU_DISABLE")
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MASKVIM_SCAN_THREADS")
# libraries that read the variables when they load: once one is imported, the process must start over
_READERS = ("torch", "numpy", "cv2")
_REEXEC_MARK = "MASKVIM_NUMERICS_REEXEC"
IDENTITY = "numeric_identity"              # `versions` key: identity_line of the evaluating process
TRAIN_IDENTITY = "train_numeric_identity"  # `versions` key: the lines of the processes that trained, "a -> b"
NOT_RECORDED = "not recorded (written before the numeric identity was recorded)"
_state = {"applied_before_import": False}


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"--numerics {mode!r}: valid modes are {', '.join(MODES)}")
    return mode


def _cpuinfo(prefix: str) -> str | None:
    """The value of the first /proc/cpuinfo line starting with `prefix`, or None (no such line or file)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _cpu_flags() -> set[str]:
    return set((_cpuinfo("flags") or "").split())


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what the platform module says."""
    return _cpuinfo("model name") or platform.processor() or platform.machine() or "unknown"


def check_portable_supported(machine: str | None = None, flags: set[str] | None = None) -> None:
    """Portable numerics is defined for x86-64 CPUs with AVX2 and FMA; elsewhere a one-line error says so."""
    machine = (machine or platform.machine()).lower()
    if machine not in ("x86_64", "amd64"):
        raise HarnessError(f"--numerics portable pins x86-64 code paths; this machine is {machine}: "
                           "pass --numerics native")
    flags = _cpu_flags() if flags is None else flags
    if flags and not {"avx2", "fma"} <= flags:
        raise HarnessError("--numerics portable needs a CPU with AVX2 and FMA, which this one lacks: "
                           "pass --numerics native")


def _numpy_major() -> int:
    import importlib.metadata as md

    try:
        return int(md.version("numpy").split(".")[0])
    except (md.PackageNotFoundError, ValueError):
        return 2


def portable_env(flags: set[str] | None = None) -> dict[str, str]:
    """The environment of portable numerics on this machine (only what it needs: OpenCV warns about
    disabling a feature the CPU lacks, NumPy about names that are not among its dispatch targets)."""
    flags = _cpu_flags() if flags is None else flags
    numpy_avx512 = ("X86_V4 AVX512_ICL AVX512_SPR" if _numpy_major() >= 2 else
                    "AVX512F AVX512CD AVX512_KNL AVX512_KNM AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR")
    env = {"MKL_CBWR": "COMPATIBLE", "DNNL_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2",
           "MASKVIM_SCAN_CPU_ISA": "AVX2", "NPY_DISABLE_CPU_FEATURES": numpy_avx512,
           **{v: "1" for v in THREAD_VARS}}
    if "avx512f" in flags:
        env["OPENCV_CPU_DISABLE"] = "AVX512F"   # also switches off every AVX-512 level above it
    return env


def _startup_env() -> Mapping[str, str]:
    """The environment this process was started with (what the libraries saw if they loaded early)."""
    try:
        with open("/proc/self/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return os.environ
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def in_force(mode: str) -> bool:
    """Whether this process runs under `mode`: native always; portable when its variables were in the
    environment at start, or were set by `apply` before any library that reads them was imported."""
    if check_mode(mode) == "native":
        return True
    want = portable_env()
    # what the libraries saw when they loaded, and what child processes will inherit
    envs = [os.environ] if _state["applied_before_import"] else [_startup_env(), os.environ]
    return all(env.get(k) == v for env in envs for k, v in want.items())


def _pin_threads() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def _settled(mode: str) -> bool:
    """Nothing to set: native, or portable already in force (then torch's threads are pinned to one)."""
    if check_mode(mode) == "native":
        return True
    check_portable_supported()
    if in_force(mode):
        _pin_threads()
        return True
    return False


def _loaded_readers() -> list[str]:
    return [m for m in _READERS if m in sys.modules]


def apply(mode: str) -> None:
    """Put `mode` in force in this process, which must not have imported torch, NumPy or OpenCV yet
    (an error says so). Native changes nothing."""
    if _settled(mode):
        return
    loaded = _loaded_readers()
    if loaded:
        raise HarnessError(f"numerics 'portable' must be set before {', '.join(loaded)} is imported: start the "
                           f"process with the environment `python -m benchmark.numerics` prints, or call "
                           f"benchmark.numerics.apply('portable') first")
    os.environ.update(portable_env())
    _state["applied_before_import"] = True


def require(mode: str) -> None:
    """Refuse to run a job of `mode` in a process where it is not in force (one-line error)."""
    if _settled(mode):
        return
    missing = {k: v for k, v in portable_env().items() if _startup_env().get(k) != v}
    raise HarnessError(
        "this job uses numerics 'portable', but the process was not started with "
        + " ".join(f"{k}={v!r}" for k, v in missing.items())
        + ": run it through its CLI (which sets them), or eval \"$(python -m benchmark.numerics)\" first")


def enter(mode: str, *, program: bool) -> None:
    """The CLIs' entry: put `mode` in force. A program (`python -m ...`, program=True) started without the
    portable environment runs itself again with it (same argv and pid); a call from Python gets `require`."""
    if _settled(mode):
        return
    if not _loaded_readers():
        apply(mode)
        return
    if not program or os.environ.get(_REEXEC_MARK):
        require(mode)   # raises with the missing variables
        return
    env = {**os.environ, **portable_env(), _REEXEC_MARK: "1"}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


# ----------------------------------------------------------------------------- what is recorded

def _torch_build_versions(config: str) -> tuple[str, str]:
    """(MKL, oneDNN) versions from torch.__config__.show()."""
    mkl = onednn = "none"
    for line in config.splitlines():
        line = line.strip(" -")
        if "Math Kernel Library Version" in line:   # "... Version 2024.2-Product Build 20240605 for ..."
            words = line.split("Version", 1)[1].split()
            mkl = words[0].split("-")[0] + (f" build {words[2]}" if len(words) > 2 and words[1] == "Build" else "")
        elif line.startswith("Intel(R) MKL-DNN v") or line.startswith("Intel(R) oneDNN v"):
            onednn = line.split(" v", 1)[1].split()[0]
    return mkl, onednn


def identity(mode: str) -> dict[str, str]:
    """The numeric identity of this process (torch must be importable): the `versions` entries of a result."""
    import torch

    mkl, onednn = _torch_build_versions(torch.__config__.show())
    out = {"numerics": check_mode(mode), "cpu_model": cpu_model(), "torch": torch.__version__,
           "cpu_capability": str(torch.backends.cpu.get_cpu_capability()), "mkl": mkl, "onednn": onednn,
           "intra_op_threads": str(torch.get_num_threads())}
    out.update({f"env.{k}": os.environ.get(k, "unset") for k in DISPATCH_VARS})
    if torch.cuda.is_available():
        out["cuda_device"] = torch.cuda.get_device_name()
    out[IDENTITY] = identity_line(out)
    return out


def identity_line(v: Mapping[str, str]) -> str:
    """One line naming a numeric identity (the entries `identity` returns); NOT_RECORDED without them."""
    if "numerics" not in v:
        return NOT_RECORDED
    cuda = f"; GPU {v['cuda_device']}" if v.get("cuda_device") else ""
    env = lambda k: v.get(f"env.{k}", "unset")   # noqa: E731
    return (f"numerics {v['numerics']}: {v.get('cpu_model', '?')}, torch {v.get('torch', '?')} "
            f"({v.get('cpu_capability', '?')}), MKL {v.get('mkl', '?')} MKL_CBWR={env('MKL_CBWR')}, "
            f"oneDNN {v.get('onednn', '?')} DNNL_MAX_CPU_ISA={env('DNNL_MAX_CPU_ISA')}, "
            f"ATEN_CPU_CAPABILITY={env('ATEN_CPU_CAPABILITY')}, {v.get('intra_op_threads', '?')} thread(s){cuda}")


def result_identity(versions: Mapping[str, str]) -> str:
    """What a result's numbers depend on, as one line: its identity, or the training and the evaluation
    identities where they differ (a job resumed or evaluated on another machine or mode)."""
    evaluated = versions.get(IDENTITY) or identity_line(versions)
    trained = versions.get(TRAIN_IDENTITY, evaluated)
    return evaluated if trained == evaluated else f"trained under {trained}; evaluated under {evaluated}"


# ----------------------------------------------------------------------------- CLI

@guarded
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmark.numerics",
                                 description="Print the shell exports of a numerics mode (eval them before a run).")
    ap.add_argument("--numerics", default="portable", choices=MODES)
    args = ap.parse_args(argv)
    if args.numerics == "portable":
        check_portable_supported()
        for k, v in portable_env().items():
            print(f"export {k}='{v}'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
