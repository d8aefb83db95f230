"""Model section of ``python -m benchmark.perf``: training step and inference pass of every model.

For maskvim, vmamba_upernet and vmamba_linear at ``micro`` (batch 4, 128x256) and ``tiny`` (batch 1,
512x1024), on CUDA when available, else CPU:

- ``train_step``: forward, ``compute_loss``, backward and an AdamW step (random images and labels);
- ``inference``: an eval-mode forward under ``torch.inference_mode`` (logits at input resolution).

Each row reports the best (least disturbed) seconds per iteration over the timed iterations after
the warm-up, images per second from it, the process CPU seconds of that iteration (all threads; on a
shared machine wall time inflates, CPU time much less), the peak memory of the timed iterations above
what was held before them, and the share of the time spent in the selective scan: every
``maskvim.scan.selective_scan`` call is clocked (CUDA synchronised), and in the training step so is
its backward, through an autograd wrapper that runs the real scan (any backend) on detached inputs and
times the ``torch.autograd.grad`` of that inner graph. share = scan seconds / step seconds, summed
over the timed iterations. (Replacing the scan by a stand-in and timing the difference, as this
module first did, over-counts: a stand-in without gradients for delta, B, C and A also skips the
x_proj / dt_proj / A_log backward that feeds them, which is not the scan's work.)

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` (reset before the timed iterations) minus what
was allocated before; on CPU the process's peak resident set (Linux ``VmHWM``, reset through
``/proc/self/clear_refs`` after ``malloc_trim`` hands freed heap pages back, so that reused pages
count again) minus the resident set before. Where the reset is not allowed the column says
``rss_peak_unreset`` and holds the process-lifetime peak instead.

Batch 1 training (``tiny``) puts the BatchNorm layers in eval mode: a 1x1 pooled PPM branch has a
single value per channel, which BatchNorm cannot normalise in training (mmseg fails the same way); the
cost of the step is unchanged. ``quick``: micro one warm-up and two timed iterations, tiny one timed
iteration without warm-up (a tiny CPU forward takes tens of seconds, so one-time costs vanish in it),
and no tiny training step on CPU (minutes each); otherwise three (tiny) or five (micro) iterations.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import re
import time

import torch
from torch import nn

SETUPS = (dict(size="micro", batch=4, input=(128, 256)), dict(size="tiny", batch=1, input=(512, 1024)))
NUM_CLASSES = 19


def scan_models() -> list[str]:
    """Registered models with a selective scan (a `scan_backend` switch) and a mask grid (`crop_size`)."""
    from benchmark import models

    return [m for m in models.list_models()
            if {"scan_backend", "crop_size"} <= set(models.default_switches(m, models.model_sizes(m)[0]))]


def run(quick: bool = False, device: str | None = None, scan_backend: str = "auto") -> list[dict]:
    """All rows of the model section (see the module docstring), for every model of `scan_models()`."""
    from benchmark.models import build_model
    from maskvim.scan import resolve_backend

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    rows = []
    for setup in SETUPS:
        size, batch, (h, w) = setup["size"], setup["batch"], setup["input"]
        tiny = size != "micro"
        iters = (1 if tiny else 2) if quick else (3 if tiny else 5)
        warmup = 0 if quick and tiny else 1
        for name in scan_models():
            torch.manual_seed(0)
            model = build_model(name, size, num_classes=NUM_CLASSES, crop_size=(h, w), scan_backend=scan_backend)
            model.to(dev)
            for phase in ("train_step", "inference"):
                if quick and phase == "train_step" and tiny and dev.type == "cpu":
                    continue
                row = measure(model, phase, batch, (h, w), dev, iters, warmup)
                rows.append({"section": "model", "model": name, "size": size, "phase": phase, "batch": batch,
                             "input": f"{h}x{w}", "device": _device_name(dev),
                             "scan_backend": resolve_backend(scan_backend, dev), "iters": iters, **row})
            del model
            if dev.type == "cuda":
                torch.cuda.empty_cache()
    return rows


def measure(model: nn.Module, phase: str, batch: int, size: tuple[int, int], dev: torch.device,
            iters: int = 3, warmup: int = 1) -> dict:
    """Best-of timing, CPU time, peak memory and scan share of `phase` ("train_step" | "inference")."""
    g = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, *size, generator=g).to(dev)
    labels = torch.randint(0, NUM_CLASSES, (batch, *size), generator=g).to(dev)
    step = _train_step(model, images, labels, batch) if phase == "train_step" else _inference(model, images)
    for _ in range(warmup):  # kernel builds, allocator growth
        step()
    base = _memory_before(dev)
    scan_seconds = [0.0]
    with _scan_timer(dev, scan_seconds):
        runs = _timed(step, iters, dev)
    peak, method = _memory_peak(dev, base)
    wall, cpu = min(runs)
    share = min(1.0, scan_seconds[0] / sum(r[0] for r in runs))
    return {"seconds_per_iter": wall, "cpu_seconds_per_iter": cpu, "images_per_s": batch / wall,
            "peak_memory_mb": peak, "memory_method": method, "scan_share": share,
            "scan_seconds_per_iter": scan_seconds[0] / iters}


def _train_step(model: nn.Module, images, labels, batch: int):
    model.train()
    if batch == 1:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)

    def step():
        opt.zero_grad(set_to_none=True)
        losses = model.compute_loss(model(images), labels)
        losses["loss"].backward()
        opt.step()
    return step


def _inference(model: nn.Module, images):
    model.eval()

    def step():
        with torch.inference_mode():
            model(images)
    return step


def _timed(step, iters: int, dev: torch.device) -> list[tuple[float, float]]:
    """(wall seconds, process CPU seconds) of each of `iters` calls."""
    out = []
    for _ in range(iters):
        _sync(dev)
        t, c = time.perf_counter(), time.process_time()
        step()
        _sync(dev)
        out.append((time.perf_counter() - t, time.process_time() - c))
    return out


@contextlib.contextmanager
def _scan_timer(dev: torch.device, total: list[float]):
    """Add the wall time of every selective scan, forward and (when it is differentiated) backward,
    to total[0]."""
    import maskvim.scan as scan

    real = scan.selective_scan

    def clock(fn):
        _sync(dev)
        t = time.perf_counter()
        out = fn()
        _sync(dev)
        total[0] += time.perf_counter() - t
        return out

    class TimedScan(torch.autograd.Function):
        """The real scan on detached copies of its inputs; backward = the clocked grad of that graph."""

        @staticmethod
        def forward(ctx, options, *inputs):
            inner = [None if x is None else x.detach().requires_grad_(x.requires_grad) for x in inputs]
            with torch.enable_grad():
                y = clock(lambda: real(*inner, **options))
            ctx.inner, ctx.y = inner, y
            return y.detach()

        @staticmethod
        def backward(ctx, dy):
            wanted = [x is not None and x.requires_grad for x in ctx.inner]
            live = [x for x, w in zip(ctx.inner, wanted) if w]
            grads = iter(clock(lambda: torch.autograd.grad(ctx.y, live, dy)))
            return (None, *(next(grads) if w else None for w in wanted))

    def timed(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True, backend="auto"):
        options = dict(delta_softplus=delta_softplus, backend=backend)
        inputs = (u, delta, A, B, C, D, delta_bias)
        if torch.is_grad_enabled() and any(x is not None and x.requires_grad for x in inputs):
            return TimedScan.apply(options, *inputs)
        return clock(lambda: real(*inputs, **options))

    scan.selective_scan = timed
    try:
        yield
    finally:
        scan.selective_scan = real


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _proc_status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            m = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M)
        return int(m.group(1)) if m else None
    except OSError:
        return None


def _malloc_trim() -> None:
    """Give glibc's free heap pages back to the OS, so a later peak counts memory it reuses."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _memory_before(dev: torch.device) -> dict:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        return {"allocated": torch.cuda.memory_allocated(dev)}
    _malloc_trim()
    reset = True
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
    except OSError:
        reset = False
    return {"rss_kb": _proc_status_kb("VmRSS"), "reset": reset}


def _memory_peak(dev: torch.device, base: dict) -> tuple[float | None, str]:
    if dev.type == "cuda":
        return (torch.cuda.max_memory_allocated(dev) - base["allocated"]) / 2**20, "cuda_max_allocated_delta"
    hwm = _proc_status_kb("VmHWM")
    if hwm is None or base["rss_kb"] is None:
        return None, "unavailable"
    if not base["reset"]:
        return hwm / 1024, "rss_peak_unreset"
    return (hwm - base["rss_kb"]) / 1024, "rss_peak_delta"


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"cpu ({torch.get_num_threads()} threads)"
