"""python -m benchmark.perf [--quick] [--json FILE] [--sections scan,model,corruptions] [--numerics native|portable]

Runs the benchmark sections (see benchmark/perf/__init__.py for the protocol), prints each as an
aligned table and, with --json, writes all rows and the machine's description atomically.
"""
from __future__ import annotations

import argparse
import importlib
import math
import sys
import time
import traceback

from benchmark import numerics
from benchmark.errors import guarded
from benchmark.numerics import MODES
from benchmark.perf import SECTIONS, machine_info


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"
    return str(v)


def format_table(rows: list[dict]) -> str:
    """Rows as an aligned text table; columns in order of first appearance, numbers right-aligned."""
    cols: list[str] = []
    for row in rows:
        cols += [k for k in row if k not in cols]
    cells = [[_cell(row.get(c)) for c in cols] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
    numeric = [all(isinstance(row.get(c), (int, float)) or row.get(c) is None for row in rows) for c in cols]

    def line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    return "\n".join([line(cols), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _json_safe(v):
    return None if isinstance(v, float) and (math.isnan(v) or math.isinf(v)) else v


@guarded
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmark.perf", description=__doc__.split("\n\n")[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repeats and cheaper estimates (a few minutes on 2 cores)")
    ap.add_argument("--json", metavar="FILE", help="write every row and the machine's description to FILE")
    ap.add_argument("--sections", default=",".join(SECTIONS),
                    help=f"comma-separated sections to run (default: {','.join(SECTIONS)})")
    ap.add_argument("--numerics", choices=MODES, default="native",
                    help="native (default): the machine's fastest code paths; portable: those of the test / smoke "
                         "presets (benchmark.numerics), to measure what they cost")
    args = ap.parse_args(argv)
    numerics.enter(args.numerics, program=argv is None)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in sections if not s.isidentifier()]
    if unknown or not sections:
        ap.error(f"--sections: expected comma-separated section names like {','.join(SECTIONS)}; got {args.sections!r}")

    machine = machine_info(args.numerics)
    print("machine: " + ", ".join(f"{k}={v}" for k, v in machine.items() if v is not None), flush=True)
    rows: list[dict] = []
    status: dict[str, str] = {}
    for name in sections:
        try:
            module = importlib.import_module(f"benchmark.perf.{name}")
        except ImportError as e:
            status[name] = f"unavailable: {e}"
            print(f"\n== {name}: unavailable ({e})", flush=True)
            continue
        print(f"\n== {name}", flush=True)
        t0 = time.perf_counter()
        try:
            got = module.run(args.quick)
        except ImportError as e:
            status[name] = f"unavailable: {e}"
            print(f"{name}: unavailable ({e})", flush=True)
            continue
        except Exception as e:  # report, run the other sections, exit non-zero at the end
            status[name] = f"failed: {type(e).__name__}: {e}"
            traceback.print_exc()
            continue
        status[name] = "ok"
        rows += got
        print(format_table(got) if got else "(no rows)")
        print(f"({name}: {time.perf_counter() - t0:.0f} s)", flush=True)

    if args.json:
        from benchmark.atomic import atomic_write_json

        atomic_write_json(args.json, {"machine": machine, "quick": args.quick, "sections": status,
                                      "rows": [{k: _json_safe(v) for k, v in r.items()} for r in rows]})
        print(f"\nwrote {args.json}")
    return 1 if any(s.startswith("failed") for s in status.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
