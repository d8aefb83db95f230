"""Params and GMACs of the models, with and without the selective scan (design §2, §3).

    python -m benchmark.complexity --models maskvim,vmamba_upernet,vmamba_linear --size tiny \\
        --input 512 2048 --format json
    python -m benchmark.complexity --size tiny --results-dir results   # the efficiency table's records

Models are the registered ones (benchmark.models; default: all). With ``--results-dir`` each record is
also kept as ``<results-dir>/complexity/<model>-<size>-<H>x<W>.json`` together with a fingerprint of the
code that counts it (this module and the model code), and reused while that code is unchanged: the
efficiency table reads these files and never builds a model. The grid's result files take their params /
GMACs from the same store (``cached_complexity``).

Counting:
- params: every parameter of the built model (``model.parameters()``), training-only parts included
  (the auxiliary FCN head, the mask logits), as mmseg counts a segmentor.
- MACs: fvcore's FlopCountAnalysis of one eval-mode forward pass (the inference path: no auxiliary
  head) of a (1, 3, H, W) input. fvcore counts one multiply-add as one "flop", so its totals are
  MACs. Its default handles are kept (conv, linear / matmul / einsum, norms, upsampling, adaptive
  pooling); element-wise ops are not counted, as in VMamba's and mmseg's tables.
- the selective scan: a Python loop or a C++ kernel is invisible to (or far too long for) the jit
  trace, so while counting, ``maskvim.scan.selective_scan`` is replaced by the stand-in custom op
  ``maskvim_complexity::selective_scan`` (same shapes, values irrelevant) whose fvcore handle counts

      scan MACs = 9 * B * L * D * N + B * D * L   (D skip)     [+ B * D * L if a z gate were fused]

  for u (B, D, L) and A (D, N), with D = K * d_inner (all K = 4 directions in one call): the
  formula of mamba issue #110 that VMamba's own tables use (their "964G" for VMamba-T + UperNet).
  Every SS2D call must go through the stand-in (checked: a module that bypassed it would make the
  count silently low, so that is an error).
- the trace runs on CPU (jit tracing on the meta device breaks conv shape checks); with the scan
  replaced, a tiny model at 512x2048 costs about a minute of CPU time.

Check against VMamba's ADE20K table (150 classes, 512x2048): ``--models vmamba_upernet --num-classes
150`` gave 54.55M params / 964.5 GMACs at tiny (theirs: 55M / 964G); with 19 classes 54.45M / 959.5,
small 75.97M / 1076.7 (+4.4 GMACs at 150 classes: theirs 76M / 1081G), base 109.66M / 1221.6
(theirs 110M / 1226G).

``gmacs`` includes the scan, ``gmacs_no_scan`` excludes it; both are raw 1e9-MAC floats.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from benchmark import jobs, models
from benchmark.atomic import atomic_write_json
from benchmark.cli import guarded

SCAN_OP = "maskvim_complexity::selective_scan"


def selective_scan_macs(b: int, d: int, l: int, n: int, with_d: bool = True, with_z: bool = False) -> int:
    """MACs of one selective scan over u (b, d, l) with d_state n (mamba issue #110's count)."""
    macs = 9 * b * l * d * n
    if with_d:
        macs += b * d * l
    if with_z:
        macs += b * d * l
    return macs


_LIBRARIES: list = []  # keeps the stand-in's registration alive


def _stand_in_op():
    """The shape-only stand-in for the selective scan, registered once per process (also when this
    module runs as ``__main__`` beside an imported copy). torch.library's low-level API: the
    ``custom_op`` decorator would import torch's compiler stack on the first traced call (seconds)."""
    namespace, op_name = SCAN_OP.split("::")
    try:
        return getattr(getattr(torch.ops, namespace), op_name)
    except (AttributeError, RuntimeError):
        pass
    lib = torch.library.Library(namespace, "DEF")
    lib.define(f"{op_name}(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor? D, Tensor? delta_bias, "
               "bool delta_softplus) -> Tensor")
    # Values are never used, only the shapes reach the count.
    lib.impl(op_name, lambda u, *args: u.clone(), "CompositeExplicitAutograd")
    _LIBRARIES.append(lib)
    return getattr(getattr(torch.ops, namespace), op_name)


def _scan_handle(inputs, outputs) -> int:
    b, d, l = inputs[0].type().sizes()
    n = inputs[2].type().sizes()[1]
    return selective_scan_macs(b, d, l, n, with_d=not inputs[5].node().mustBeNone())


@contextlib.contextmanager
def _counting_scan() -> Iterator[list[int]]:
    """Route ``maskvim.scan.selective_scan`` through the stand-in op; yields a one-item call counter."""
    import maskvim.scan as scan

    op = _stand_in_op()
    calls = [0]
    original = scan.selective_scan

    def stand_in(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True, backend="auto"):
        calls[0] += 1
        return op(u, delta, A, B, C, D, delta_bias, bool(delta_softplus))

    scan.selective_scan = stand_in
    try:
        yield calls
    finally:
        scan.selective_scan = original


def count_macs(model: nn.Module, inputs: tuple) -> tuple[int, int]:
    """(total MACs, scan MACs) of ``model(*inputs)`` counted by fvcore with the scan handle."""
    from fvcore.nn import FlopCountAnalysis

    from maskvim.ss2d import SS2D

    ss2d_calls = [0]
    hooks = [m.register_forward_hook(lambda *_: ss2d_calls.__setitem__(0, ss2d_calls[0] + 1))
             for m in model.modules() if isinstance(m, SS2D)]
    try:
        with _counting_scan() as scan_calls, torch.no_grad():
            analysis = FlopCountAnalysis(model, inputs).set_op_handle(SCAN_OP, _scan_handle)
            analysis.unsupported_ops_warnings(False)
            analysis.uncalled_modules_warnings(False)
            total = int(analysis.total())
            scan = int(analysis.by_operator().get(SCAN_OP.split("::")[-1], 0))
    finally:
        for h in hooks:
            h.remove()
    if scan_calls[0] < ss2d_calls[0]:
        raise RuntimeError(f"{ss2d_calls[0]} SS2D calls but only {scan_calls[0]} selective scans went through "
                           f"maskvim.scan.selective_scan: the scan count would be incomplete")
    return total, scan


def measure_complexity(name: str, size: str, input_hw: tuple[int, int], num_classes: int = 19,
                       **switches) -> dict:
    """Params and GMACs (with / without the scan) of ``build_model(name, size, num_classes, **switches)``
    on one (1, 3, H, W) image: the design §2 record ``{"model", "size", "input", "params", "gmacs",
    "gmacs_no_scan"}``."""
    h, w = (int(v) for v in input_hw)
    model = models.build_model(name, size, num_classes=num_classes, **switches).eval()
    params = sum(p.numel() for p in model.parameters())
    total, scan = count_macs(model, (torch.zeros(1, 3, h, w),))
    return {"model": name, "size": size, "input": [h, w], "params": int(params),
            "gmacs": total / 1e9, "gmacs_no_scan": (total - scan) / 1e9}


def code_fingerprint(model: str) -> str:
    """sha256 (16 hex) over the source of this module, of the suite's model code (maskvim/, baselines/) and of
    the package that registers `model`: a count is reused only while none of them changed."""
    root = jobs.REPO_ROOT
    files = {Path(__file__).resolve(), *(root / "maskvim").rglob("*.py"), *(root / "baselines").rglob("*.py")}
    module = sys.modules.get(models.get_family(model).build.__module__)
    if getattr(module, "__file__", None):
        files |= set(Path(module.__file__).resolve().parent.glob("*.py"))
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(str(f.relative_to(root) if f.is_relative_to(root) else f.name).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def cached_complexity(results_dir: str | Path, model: str, size: str, input_hw, switches: dict[str, Any] | None = None
                      ) -> dict:
    """The design §2 record of `model` at `size` with non-default `switches` (JSON values), measured once per
    code fingerprint and kept under <results-dir>/complexity/ (see the module docstring)."""
    switches = dict(switches or {})
    hw = [int(v) for v in input_hw]
    path = jobs.complexity_path(results_dir, model, size, hw)
    if switches:
        tag = hashlib.sha256(json.dumps(switches, sort_keys=True).encode()).hexdigest()[:12]
        path = path.with_name(f"{path.stem}-{tag}.json")
    code = code_fingerprint(model)
    if path.exists():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            if stored.get("code") == code and stored.get("switches") == switches:
                return {k: stored[k] for k in jobs.COMPLEXITY_RECORD_KEYS}
        except (json.JSONDecodeError, KeyError, AttributeError):
            pass   # a damaged or stale record is remeasured
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in switches.items()}
    record = measure_complexity(model, size, tuple(hw), **kwargs)
    atomic_write_json(path, {**record, "switches": switches, "code": code})
    return record


def format_markdown(records: list[dict]) -> str:
    lines = ["| Model | Size | Input | Params (M) | GMACs | GMACs w/o scan |",
             "|---|---|---|---:|---:|---:|"]
    for r in records:
        lines.append(f"| {r['model']} | {r['size']} | {r['input'][0]}x{r['input'][1]} | {r['params'] / 1e6:.2f} "
                     f"| {r['gmacs']:.1f} | {r['gmacs_no_scan']:.1f} |")
    lines.append("")
    lines.append("GMACs: fvcore (1 multiply-add = 1), eval forward of one image; scan counted as "
                 "9*B*L*D*N + B*D*L per call (mamba issue #110). Params include the auxiliary head and mask logits.")
    return "\n".join(lines)


@guarded
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.complexity", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=None,
                        help=f"comma-separated registered models (default: all, {','.join(models.list_models())})")
    parser.add_argument("--size", default="tiny", help="model size (default: %(default)s)")
    parser.add_argument("--input", nargs=2, type=int, default=(512, 2048), metavar=("H", "W"),
                        help="input height and width (default: 512 2048, the mmseg convention)")
    parser.add_argument("--num-classes", type=int, default=19, help="classifier width (default: %(default)s)")
    parser.add_argument("--format", choices=("json", "md"), default="md", help="output format (default: %(default)s)")
    parser.add_argument("--out", default=None, help="also write the output to this file (atomically)")
    parser.add_argument("--results-dir", default=None,
                        help="keep each record under <DIR>/complexity/ and reuse it while the code is unchanged "
                             "(19 classes only: what the efficiency table shows)")
    args = parser.parse_args(argv)

    names = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else models.list_models()
    unknown = [m for m in names if not models.is_registered(m)]
    if not names or unknown:
        parser.error(f"--models: unknown model(s) {unknown or args.models!r}; choose from "
                     f"{', '.join(models.list_models())}")
    sizeless = [m for m in names if args.size not in models.model_sizes(m)]
    if sizeless:
        parser.error(f"--size {args.size}: not a size of {', '.join(sizeless)}")
    if min(args.input) < 32 or args.num_classes < 1:
        parser.error("--input must be at least 32 32 and --num-classes at least 1")
    if args.results_dir and args.num_classes != 19:
        parser.error("--results-dir keeps 19-class records only; leave out --num-classes")

    if args.results_dir:
        records = [cached_complexity(jobs.results_dir_of(args.results_dir), m, args.size, args.input) for m in names]
    else:
        records = [measure_complexity(m, args.size, tuple(args.input), num_classes=args.num_classes) for m in names]
    text = json.dumps(records, indent=2) if args.format == "json" else format_markdown(records)
    print(text)
    if args.out:
        from benchmark.atomic import atomic_write_text

        atomic_write_text(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
