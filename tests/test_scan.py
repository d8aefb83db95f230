"""The selective scan: every available backend against "ref", "ref" against a naive loop, the
fallback when the C++ kernel cannot be built, input validation, memory of the saved state, and
concurrent builds of the kernel."""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch

from maskvim.scan import cpu as scan_cpu
from maskvim.scan import cuda as scan_cuda
from maskvim.scan import ScanBackendWarning, available_backends, resolve_backend, selective_scan, selective_scan_ref

from conftest import make_inputs

NAMES = ("u", "delta", "A", "B", "C", "D", "delta_bias")


def run(backend, xs, softplus=True, dy=None):
    y = selective_scan(*xs, delta_softplus=softplus, backend=backend)
    dy = torch.randn_like(y) if dy is None else dy
    live = [t for t in xs if t is not None]
    grads = torch.autograd.grad(y, live, dy)
    return y, grads, dy


def cpu_available():
    return scan_cpu.kernel_available()


FAST_BACKENDS = [
    pytest.param("cpu", marks=pytest.mark.skipif(not cpu_available(),
                                                  reason=f"C++ kernel unavailable: {scan_cpu.build_error()}")),
    pytest.param("cuda", marks=pytest.mark.skipif(not scan_cuda.kernel_available(),
                                                   reason="mamba_ssm does not import or no CUDA device")),
]

# (b, d, n, g, l): l = 1, odd l with d/g not a multiple of the 8 lanes, g = 1 across chunk
# boundaries (K = 64), g = 4, and every n the kernel specialises (4, 8, 16, 32) or not (5)
SHAPES = [(2, 8, 16, 2, 1), (1, 6, 5, 3, 37), (2, 16, 16, 1, 130), (2, 32, 4, 4, 67), (1, 24, 16, 4, 200),
          (1, 16, 8, 2, 65), (2, 8, 32, 1, 140)]


def assert_matches(backend, shape, dtype, with_D, with_bias, softplus, rtol, atol):
    device = "cuda" if backend == "cuda" else "cpu"
    xs = make_inputs(*shape, dtype=dtype, device=device, seed=sum(shape), with_D=with_D, with_bias=with_bias,
                     softplus=softplus)
    y, grads, dy = run(backend, xs, softplus)
    y_ref, grads_ref, _ = run("ref", xs, softplus, dy)
    assert y.dtype == dtype and y.shape == y_ref.shape
    live = [name for name, t in zip(NAMES, xs) if t is not None]
    for name, a, e in zip(("y", *live), (y, *grads), (y_ref, *grads_ref)):
        scale = e.abs().max().item() + 1e-30
        torch.testing.assert_close(a, e, rtol=rtol, atol=atol * scale, msg=lambda m: f"{backend} {name}: {m}")


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "b{}d{}n{}g{}l{}".format(*s))
@pytest.mark.parametrize("with_D,with_bias,softplus", [(True, True, True), (False, False, True),
                                                       (True, False, False), (False, True, False)])
def test_matches_ref_float64(backend, shape, with_D, with_bias, softplus):
    if backend == "cuda":
        pytest.skip("mamba_ssm has no float64 kernel")
    assert_matches(backend, shape, torch.float64, with_D, with_bias, softplus, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "b{}d{}n{}g{}l{}".format(*s))
@pytest.mark.parametrize("with_D,with_bias,softplus", [(True, True, True), (False, True, False)])
def test_matches_ref_float32(backend, shape, with_D, with_bias, softplus):
    assert_matches(backend, shape, torch.float32, with_D, with_bias, softplus, rtol=1e-3, atol=2e-4)


def test_cpu_float32_close_to_float64_oracle():
    """The float32 kernel (AVX2 exp, float32 states) against the oracle run in float64 on the same inputs."""
    if not cpu_available():
        pytest.skip(f"C++ kernel unavailable: {scan_cpu.build_error()}")
    xs32 = make_inputs(2, 16, 16, 4, 300, dtype=torch.float32, seed=3)
    xs64 = [t.detach().double().requires_grad_() for t in xs32]
    y, grads, dy = run("cpu", xs32)
    y64, grads64, _ = run("ref", xs64, dy=dy.double())
    for name, a, e in zip(("y", *NAMES), (y, *grads), (y64, *grads64)):
        err = (a.double() - e).abs().max().item() / e.abs().max().item()
        assert err < 2e-5, f"{name}: relative error {err:.2e}"


@pytest.mark.skipif(not cpu_available(), reason="C++ kernel unavailable")
@pytest.mark.parametrize("softplus", [True, False])
def test_cpu_gradcheck(softplus):
    xs = make_inputs(1, 4, 3, 2, 9, seed=1, softplus=softplus)
    assert torch.autograd.gradcheck(lambda *x: selective_scan(*x, delta_softplus=softplus, backend="cpu"), xs,
                                    eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.skipif(not cpu_available(), reason="C++ kernel unavailable")
def test_cpu_split_tasks_and_thread_counts_agree():
    """More threads than (batch, group) pairs splits the channels of a group over tasks, each with its
    own dB/dC slot: the results must not depend on it."""
    xs = make_inputs(1, 64, 4, 1, 70, seed=5)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        y1, g1, dy = run("cpu", xs)
        torch.set_num_threads(4)
        assert scan_cpu._splits(scan_cpu.load_extension(), 1, 64, 1, 4, True, 4, True) > 1
        y4, g4, _ = run("cpu", xs, dy=dy)
    finally:
        torch.set_num_threads(before)
    for a, e in zip((y1, *g1), (y4, *g4)):
        torch.testing.assert_close(a, e, rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(not cpu_available(), reason="C++ kernel unavailable")
def test_cpu_half_inputs_and_no_grad():
    xs = make_inputs(2, 16, 16, 4, 50, dtype=torch.float32, seed=7)
    with torch.no_grad():
        y_nograd = selective_scan(*xs, backend="cpu")
    y, _, _ = run("cpu", xs)
    torch.testing.assert_close(y_nograd, y, rtol=0, atol=0)
    xb = [t.detach().bfloat16().requires_grad_() for t in xs]
    yb = selective_scan(*xb, backend="cpu")
    assert yb.dtype == torch.bfloat16
    yb.float().sum().backward()
    assert all(t.grad is not None and t.grad.dtype == torch.bfloat16 for t in xb)
    y_ref = selective_scan(*[t.detach().float() for t in xb], backend="ref")
    torch.testing.assert_close(yb.float(), y_ref, rtol=2e-2, atol=2e-2 * y_ref.abs().max().item())


@pytest.mark.skipif(not cpu_available(), reason="C++ kernel unavailable")
def test_cpu_nan_propagates():
    xs = [t.detach() for t in make_inputs(1, 8, 16, 1, 20, dtype=torch.float32)]
    xs[2] = xs[2].clone()
    xs[2][3, 5] = float("nan")  # one state of channel 3
    y = selective_scan(*xs, backend="cpu")
    y_ref = selective_scan(*xs, backend="ref")
    assert torch.equal(torch.isnan(y), torch.isnan(y_ref)) and torch.isnan(y[:, 3]).all()


def test_cpu_saved_state_is_linear_in_l_without_n():
    """What the cpu backend keeps for the backward, beyond its inputs, is at most a quarter of u's
    size, whatever n (the ref backend keeps O(b*d*n*l))."""
    if not cpu_available():
        pytest.skip("C++ kernel unavailable")

    def saved_bytes(backend, n, l):
        xs = make_inputs(1, 32, n, 4, l, dtype=torch.float32)
        total = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: total.append(t.numel() * t.element_size()) or t,
                                                      lambda t: t):
            selective_scan(*xs, backend=backend)
        return sum(total), sum(t.numel() * t.element_size() for t in xs)

    for n, l in ((16, 512), (64, 512), (16, 2048)):
        saved, inputs = saved_bytes("cpu", n, l)
        u_bytes = 32 * l * 4
        assert saved - inputs <= u_bytes / 4, (n, l, saved, inputs)
    ref_saved, _ = saved_bytes("ref", 16, 512)
    assert ref_saved > 16 * 32 * 512 * 4  # the oracle does hold b*d*n*l values


# ---------------------------------------------------------------------------------------------------
# the oracle itself


def naive_scan(u, delta, A, B, C, D, delta_bias, softplus):
    """The recurrence with Python floats, one channel and one state at a time."""
    b, d, l = u.shape
    g, n = B.shape[1], A.shape[1]
    y = torch.zeros(b, d, l, dtype=torch.float64)
    for bi in range(b):
        for c in range(d):
            grp = c // (d // g)
            h = [0.0] * n
            for t in range(l):
                x = float(delta[bi, c, t]) + (float(delta_bias[c]) if delta_bias is not None else 0.0)
                dt = (x if x > 20 else math.log1p(math.exp(x))) if softplus else x
                acc = 0.0
                for s in range(n):
                    h[s] = math.exp(dt * float(A[c, s])) * h[s] + dt * float(B[bi, grp, s, t]) * float(u[bi, c, t])
                    acc += float(C[bi, grp, s, t]) * h[s]
                y[bi, c, t] = acc + (float(D[c]) * float(u[bi, c, t]) if D is not None else 0.0)
    return y


@pytest.mark.parametrize("with_D,with_bias,softplus", [(True, True, True), (False, False, False)])
def test_ref_matches_naive_recurrence(with_D, with_bias, softplus):
    xs = [None if t is None else t.detach() for t in
          make_inputs(2, 4, 3, 2, 6, seed=11, with_D=with_D, with_bias=with_bias, softplus=softplus)]
    torch.testing.assert_close(selective_scan_ref(*xs, delta_softplus=softplus), naive_scan(*xs, softplus),
                               rtol=1e-12, atol=1e-12)


def test_ref_gradcheck_and_half_precision():
    xs = make_inputs(1, 4, 2, 2, 5, seed=2)
    assert torch.autograd.gradcheck(lambda *x: selective_scan_ref(*x), xs, eps=1e-6, atol=1e-7, rtol=1e-5)
    xh = [t.detach().half() for t in xs]
    assert selective_scan_ref(*xh).dtype == torch.float16


# ---------------------------------------------------------------------------------------------------
# fallback, backend resolution, validation


def test_failed_build_warns_once_and_runs_ref(monkeypatch):
    def broken_build():
        raise RuntimeError("Error building extension 'maskvim_scan_cpu':\nc++: not found")

    monkeypatch.setattr(scan_cpu, "_state", {"tried": False, "module": None, "error": None, "warned": False})
    monkeypatch.setattr(scan_cpu, "_build", broken_build)
    xs = make_inputs(1, 4, 3, 2, 7, seed=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y1 = selective_scan(*xs, backend="cpu")
        y2 = selective_scan(*xs, backend="auto")
        assert resolve_backend("cpu", "cpu") == "ref" and resolve_backend("auto", "cpu") == "ref"
        assert available_backends()[:1] == ["ref"] and "cpu" not in available_backends()
    ours = [w for w in caught if issubclass(w.category, ScanBackendWarning)]
    assert len(ours) == 1, [str(w.message) for w in ours]
    message = str(ours[0].message)
    assert "\n" not in message and "c++: not found" in message and "'ref'" in message
    assert scan_cpu.build_error().startswith("RuntimeError")
    y_ref = selective_scan_ref(*xs)
    torch.testing.assert_close(y1, y_ref, rtol=0, atol=0)
    torch.testing.assert_close(y2, y_ref, rtol=0, atol=0)


def test_resolve_backend():
    assert resolve_backend("ref", "cpu") == "ref"
    assert resolve_backend("ref", "cuda") == "ref"
    if cpu_available():
        assert resolve_backend("auto", "cpu") == "cpu" and resolve_backend("cpu", torch.device("cpu")) == "cpu"
        assert available_backends()[:2] == ["ref", "cpu"]
    with pytest.raises(ValueError, match="CPU tensors"):
        resolve_backend("cpu", "cuda")
    with pytest.raises(ValueError, match="CUDA tensors"):
        resolve_backend("cuda", "cpu")
    with pytest.raises(ValueError, match="float64"):
        resolve_backend("cuda", "cuda", torch.float64)
    with pytest.raises(ValueError, match="backend must be one of"):
        resolve_backend("fast", "cpu")
    assert resolve_backend("auto", "cuda", torch.float64) == "ref"
    if scan_cuda.load_kernel() is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ScanBackendWarning)
            assert resolve_backend("auto", "cuda") == "ref"
        with pytest.raises(RuntimeError, match="mamba_ssm"):
            resolve_backend("cuda", "cuda")
    else:
        assert resolve_backend("auto", "cuda") == "cuda"


def test_cpu_kernel_builds_where_a_compiler_exists():
    has_compiler = bool(shutil.which("c++") or shutil.which("g++"))
    if not has_compiler or not (shutil.which("ninja") or _has_ninja_module()):
        pytest.skip("no C++ compiler or ninja on this machine")
    assert cpu_available(), scan_cpu.build_error()


def _has_ninja_module():
    try:
        import ninja  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("arg,bad,pattern", [
    ("u", torch.zeros(2, 8), r"u must have shape \(b, d, l\)"),
    ("delta", torch.zeros(2, 8, 5), r"delta must have shape \(b, d, l\) = \(2, 8, 6\)"),
    ("A", torch.zeros(4, 3), r"A must have shape \(d, n\) = \(8, n\)"),
    ("B", torch.zeros(2, 3, 3, 6), r"B must have shape \(b, g, n, l\) = \(2, g, 3, 6\) with d = 8 divisible by g"),
    ("B", torch.zeros(2, 2, 3, 7), r"B must have shape"),
    ("C", torch.zeros(2, 2, 3, 5), r"C must have shape \(b, g, n, l\) = \(2, 2, 3, 6\)"),
    ("D", torch.zeros(7), r"D must have shape \(d,\) = \(8,\)"),
    ("delta_bias", torch.zeros(8, 1), r"delta_bias must have shape \(d,\) = \(8,\)"),
    ("u", torch.zeros(2, 8, 6, dtype=torch.int64), r"u must be a real floating-point tensor"),
    ("A", torch.zeros(8, 3, dtype=torch.complex64), r"A must be a real floating-point tensor"),
    ("C", torch.zeros(2, 2, 3, 6, device="meta"), r"C is on meta but u is on cpu"),
    ("D", [1.0] * 8, r"D must be a torch.Tensor"),
])
def test_invalid_inputs_raise_value_error_naming_the_argument(arg, bad, pattern):
    xs = dict(zip(NAMES, [t.detach() for t in make_inputs(2, 8, 3, 2, 6, dtype=torch.float32)]))
    xs[arg] = bad
    with pytest.raises(ValueError, match=pattern):
        selective_scan(**xs)


def test_kernel_thread_count_override(monkeypatch):
    monkeypatch.setenv("MASKVIM_SCAN_THREADS", "3")
    assert scan_cpu.threads() == 3
    monkeypatch.setenv("MASKVIM_SCAN_THREADS", "0")
    assert scan_cpu.threads() == 1
    monkeypatch.setenv("MASKVIM_SCAN_THREADS", "many")
    with pytest.raises(ValueError, match="MASKVIM_SCAN_THREADS"):
        scan_cpu.threads()
    monkeypatch.delenv("MASKVIM_SCAN_THREADS")
    assert scan_cpu.threads() == torch.get_num_threads()


def test_invalid_flags():
    xs = [t.detach() for t in make_inputs(1, 4, 2, 1, 3, dtype=torch.float32)]
    with pytest.raises(ValueError, match="delta_softplus must be a bool"):
        selective_scan(*xs, delta_softplus="yes")
    with pytest.raises(ValueError, match="backend must be one of"):
        selective_scan(*xs, backend="gpu")


# ---------------------------------------------------------------------------------------------------
# concurrent builds


@pytest.mark.slow
def test_concurrent_builds_share_one_cache(tmp_path):
    """Two processes building the kernel at once into an empty cache (as DDP ranks or parallel pytest
    workers do), with a stale torch FileBaton left behind by a crashed builder: both get a working
    kernel and agree; a third process reuses the build."""
    if not cpu_available():
        pytest.skip("C++ kernel unavailable here")
    env = dict(os.environ, MASKVIM_EXT_DIR=str(tmp_path))
    stale = tmp_path.joinpath(*scan_cpu.build_root().parts[-1:], scan_cpu.extension_name())
    stale.mkdir(parents=True)
    (stale / "lock").write_text("")  # what an interrupted torch build leaves: others would wait forever
    code = textwrap.dedent("""
        import sys, torch
        from maskvim.scan import cpu, selective_scan
        assert cpu.load_extension() is not None, cpu.build_error()
        g = torch.Generator().manual_seed(0)
        u, dl = torch.randn(2, 8, 50, generator=g), torch.randn(2, 8, 50, generator=g)
        A, B, C = -torch.rand(8, 16, generator=g), torch.randn(2, 2, 16, 50, generator=g), torch.randn(2, 2, 16, 50, generator=g)
        print(float(selective_scan(u, dl, A, B, C, backend="cpu").double().sum()))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    assert outs[0][0] == outs[1][0]
    again = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and again.stdout == outs[0][0], again.stderr
    assert len(list(stale.glob("*.so"))) == 1


@pytest.mark.slow
def test_portable_build_matches_ref(tmp_path):
    """The variant CPUs without AVX2 get (plain loops the compiler vectorises, no intrinsics)."""
    if not cpu_available():
        pytest.skip("C++ kernel unavailable here")
    env = dict(os.environ, MASKVIM_EXT_DIR=str(tmp_path), MASKVIM_SCAN_CPU_ISA="DEFAULT",
               MASKVIM_TEST_NUMERICS="native")   # conftest's helpers under another scan ISA on purpose
    code = textwrap.dedent("""
        import json, sys, torch
        sys.path.insert(0, "tests")  # as pytest's rootdir conftest import: test_scan reads make_inputs there
        from maskvim.scan import cpu, selective_scan
        from test_scan import make_inputs, run
        assert cpu.cpu_isa() == "DEFAULT" and cpu.load_extension() is not None, cpu.build_error()
        errs = []
        for dtype in (torch.float32, torch.float64):
            for shape in ((2, 16, 16, 2, 150), (1, 12, 5, 3, 70)):
                xs = make_inputs(*shape, dtype=dtype, seed=9)
                y, g, dy = run("cpu", xs)
                y_ref, g_ref, _ = run("ref", xs, dy=dy)
                errs.append(max(((a - e).abs().max() / e.abs().max()).item() for a, e in zip((y, *g), (y_ref, *g_ref))))
        print(json.dumps(errs))
    """)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr
    errs = json.loads(out.stdout.strip().splitlines()[-1])
    assert max(errs[:2]) < 1e-4 and max(errs[2:]) < 1e-10, errs


@pytest.mark.slow
def test_standalone_kernel_benchmark_builds_and_runs(tmp_path):
    """The README's kernel timings come from csrc/bench_kernel.cpp (the kernel without Python): it must
    keep compiling with the extension's ISA flags, time the shapes it is given and reject a bad one."""
    cxx = shutil.which("g++") or shutil.which("c++")
    if not cxx:
        pytest.skip("no C++ compiler")
    src = scan_cpu.SOURCE.parent / "bench_kernel.cpp"
    exe = tmp_path / "bench_kernel"
    isa = scan_cpu.ISA_FLAGS.get(scan_cpu.cpu_isa(), ())
    # -O1: the same code paths as the -O3 build, compiled in a third of the time
    built = subprocess.run([cxx, "-std=c++17", "-O1", "-fopenmp", *isa, str(src), "-o", str(exe)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    out = subprocess.run([str(exe), "2", "2", "2,16,100", "1,8,33"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("shapes 2, 2 thread(s), best of 2: forward ")
    checksum = float(out.stdout.rsplit("checksum", 1)[1])
    assert math.isfinite(checksum) and checksum != 0.0
    bad = subprocess.run([str(exe), "1", "1", "2,6,5"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "bad shape 2,6,5" in bad.stderr
