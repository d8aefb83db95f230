#!/usr/bin/env bash
# The whole pipeline: .venv, data, the main grid, the ablation grid, tables and plots.
#
#   bash run_all.sh                                  # smoke preset on synthetic data (CPU)
#   bash run_all.sh --preset paper --data-root /data --seeds 0 1 2
#
# Flags:
#   --preset test|smoke|paper   run size (default smoke)
#   --data-root DIR             data root (default: the preset's; smoke/test: datasets/synthetic, made if missing)
#   --results-dir DIR           outputs (default results/): runs/, ablation/, checkpoints/, tables/, plots/
#   --seeds S [S ...]           training seeds (default 0)
#   --no-ablations              skip the ablation grid (paper Tables 6-8, Figures 5-6)
#   --setup-only                create .venv and the data, then stop
#   --jobs N                    grid workers side by side, each taking the next unclaimed job (default: the
#                               CPU core count for test/smoke, 1 for paper; on 2 cores two 1-thread workers
#                               are ~2x faster than one 2-thread process, whose OpenMP threads spin on a busy
#                               core); native numerics give each 1/N of the cores, portable one thread
#   --numerics portable|native  portable (test/smoke default): the same numbers on every x86-64 CPU with AVX2,
#                               whatever --jobs; native (paper default): the machine's fastest code paths
# Every step skips what is already done, so rerunning continues where a previous run stopped.
# Relative paths are taken from the repository root (the script changes there first).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

PRESET=smoke
DATA_ROOT=""
RESULTS_DIR=results
SEEDS=(0)
ABLATIONS=1
SETUP_ONLY=0
JOBS=""
NUMERICS=""

# the header comment above, whatever its length
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --preset) PRESET="${2:?--preset needs a value}"; shift 2 ;;
    --data-root) DATA_ROOT="${2:?--data-root needs a value}"; shift 2 ;;
    --results-dir) RESULTS_DIR="${2:?--results-dir needs a value}"; shift 2 ;;
    --seeds)
      shift; SEEDS=()
      while [ $# -gt 0 ] && [[ "$1" != --* ]]; do SEEDS+=("$1"); shift; done
      [ ${#SEEDS[@]} -gt 0 ] || { echo "run_all.sh: --seeds needs at least one value" >&2; exit 2; } ;;
    --no-ablations) ABLATIONS=0; shift ;;
    --setup-only) SETUP_ONLY=1; shift ;;
    --jobs) JOBS="${2:?--jobs needs a value}"; shift 2 ;;
    --numerics) NUMERICS="${2:?--numerics needs a value}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_all.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$PRESET" in test|smoke|paper) ;; *) echo "run_all.sh: unknown preset '$PRESET' (test, smoke, paper)" >&2; exit 2 ;; esac
case "$NUMERICS" in ""|portable|native) ;; *) echo "run_all.sh: --numerics must be portable or native, got '$NUMERICS'" >&2; exit 2 ;; esac
# the cores this process may use (nproc alone obeys OMP_NUM_THREADS)
CORES=$(env -u OMP_NUM_THREADS nproc 2>/dev/null || echo 1)
if [ -z "$JOBS" ]; then
  if [ "$PRESET" = paper ]; then JOBS=1; else JOBS=$CORES; fi
fi
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || { echo "run_all.sh: --jobs must be a positive integer, got '$JOBS'" >&2; exit 2; }

source scripts/setup_venv.sh

if [ -z "$DATA_ROOT" ]; then
  DATA_ROOT="$(python -c "from benchmark.presets import get_preset; print(get_preset('$PRESET').data_root)")"
fi
if [ -z "$NUMERICS" ]; then
  NUMERICS="$(python -c "from benchmark.presets import get_preset; print(get_preset('$PRESET').numerics)")"
fi
# portable numerics: every step below (data generation too) runs with the pinned library code paths,
# exported before any Python process loads torch, NumPy or OpenCV (benchmark/numerics.py)
if [ "$NUMERICS" = portable ]; then
  exports="$(python -m benchmark.numerics --numerics portable)"
  eval "$exports"
fi
start=$(date +%s)
stamp() { echo "[run_all $(( $(date +%s) - start ))s] $*"; }

# --- data ---------------------------------------------------------------------------------------
if [ "$PRESET" = paper ]; then
  [ -d "$DATA_ROOT" ] || { echo "run_all.sh: data root '$DATA_ROOT' not found; put the real datasets there (datasets/README.md)" >&2; exit 2; }
  python -m benchmark.data.check --root "$DATA_ROOT" || echo "run_all.sh: benchmark.data.check reported problems (above)" >&2
else
  stamp "synthetic domains in $DATA_ROOT"
  python -m benchmark.data.synthetic --out "$DATA_ROOT"
fi
if [ -d "$DATA_ROOT/cityscapes" ]; then
  stamp "Cityscapes-C (severity 5) in $DATA_ROOT/cityscapes_c"
  python -m benchmark.data.cityscapes_c --root "$DATA_ROOT" --severity 5
fi
if [ "$SETUP_ONLY" = 1 ]; then stamp "setup done (--setup-only)"; exit 0; fi

# grid_steps [--claim-jobs]: one worker's share of the grids: the main grid, then (unless --no-ablations) the
# ablation grid, so a worker that finds no main-grid job left starts on the ablation cells at once instead of
# idling until the others finish.
grid_steps() {
  python -m benchmark.run --preset "$PRESET" --numerics "$NUMERICS" --data-root "$DATA_ROOT" \
    --results-dir "$RESULTS_DIR" --seeds "${SEEDS[@]}" "$@" || return 1
  [ "$ABLATIONS" = 1 ] || return 0
  python -m benchmark.ablation --all --preset "$PRESET" --numerics "$NUMERICS" --data-root "$DATA_ROOT" \
    --results-dir "$RESULTS_DIR" --seeds "${SEEDS[@]}" "$@"
}

# JOBS workers side by side run grid_steps with --claim-jobs: each takes the next unclaimed job (longest first)
# until none is left, so together they run every grid exactly once and no core idles while jobs are queued.
run_workers() {
  if [ "$JOBS" -le 1 ]; then grid_steps; return; fi
  local threads=$(( CORES / JOBS )) pids=() i failed=0
  [ "$threads" -ge 1 ] || threads=1
  [ "$NUMERICS" = native ] || threads=1   # portable: one thread per process (the reductions depend on it)
  for (( i = 0; i < JOBS; i++ )); do
    ( set -o pipefail
      export OMP_NUM_THREADS=$threads MASKVIM_SCAN_THREADS=$threads
      grid_steps --claim-jobs 2>&1 | sed -u "s/^/[worker $i\/$JOBS] /" ) &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || { echo "run_all.sh: grid worker $i/$JOBS failed" >&2; failed=1; }; done
  return "$failed"
}

# --- grids --------------------------------------------------------------------------------------
stamp "grids: preset $PRESET, numerics $NUMERICS, seeds ${SEEDS[*]}, main grid$([ "$ABLATIONS" = 1 ] && echo ' then ablation grid'), $JOBS worker(s)"
run_workers
grids_done=$(date +%s)
# params / GMACs do not depend on the numerics: all cores, whatever the mode
stamp "complexity: params / GMACs of every model at tiny size, 512x2048 (kept in $RESULTS_DIR/complexity/)"
OMP_NUM_THREADS=$CORES MKL_NUM_THREADS=$CORES MASKVIM_SCAN_THREADS=$CORES \
  python -m benchmark.complexity --size tiny --input 512 2048 --results-dir "$RESULTS_DIR" >/dev/null

# --- tables and plots ---------------------------------------------------------------------------
stamp "tables"
mkdir -p "$RESULTS_DIR/tables"
tables=()
for what in "--setting cityscapes" "--setting mapillary" "--setting gta" "--setting cityscapes-c" "--setting efficiency"; do
  name="${what##* }"
  for fmt in md csv latex; do
    ext=$fmt; [ "$fmt" = latex ] && ext=tex
    # shellcheck disable=SC2086
    python -m benchmark.table $what --format "$fmt" --results-dir "$RESULTS_DIR" --out "$RESULTS_DIR/tables/$name.$ext"
  done
  tables+=("$RESULTS_DIR/tables/$name.md")
done
if [ "$ABLATIONS" = 1 ]; then
  for t in 6 7 8; do
    for fmt in md csv latex; do
      ext=$fmt; [ "$fmt" = latex ] && ext=tex
      python -m benchmark.table --ablation "$t" --format "$fmt" --results-dir "$RESULTS_DIR" \
        --out "$RESULTS_DIR/tables/table$t.$ext"
    done
  done
fi
stamp "plots"
python -m benchmark.plots --results-dir "$RESULTS_DIR"

end=$(date +%s)
echo
echo "Done in $(( end - start )) s (grids $(( grids_done - start )) s)."
echo "  result files: $RESULTS_DIR/runs/ (ablation cells: $RESULTS_DIR/ablation/runs/)"
echo "  tables:       $RESULTS_DIR/tables/ (md, csv, tex), e.g. $RESULTS_DIR/tables/gta.md"
echo "  plots:        $RESULTS_DIR/plots/ (png, pdf)"
echo "  print one:    python -m benchmark.table --setting gta --results-dir $RESULTS_DIR"
