"""run_all.sh end to end at the test preset: result files carry the numeric identity, tables rank no single seed."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from benchmark import numerics

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_run_all_test_preset_records_the_numeric_identity_and_marks_no_single_seed_best(tmp_path):
    data, results = tmp_path / "data dir", tmp_path / "results"
    done = subprocess.run(["bash", str(REPO / "run_all.sh"), "--preset", "test", "--no-ablations",
                           "--data-root", str(data), "--results-dir", str(results)],
                          capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "numerics portable" in done.stdout
    files = sorted((results / "runs").glob("gta__*.json"))
    assert len(files) == 3 * 5                        # 3 models x (4 targets + in-domain)
    for path in files:
        r = json.loads(path.read_text())
        assert r["config"]["numerics"] == "portable", path
        v = r["versions"]
        assert v["numerics"] == "portable" and v["env.MKL_CBWR"] == "COMPATIBLE", path
        assert v["intra_op_threads"] == "1" and v["cpu_model"] and v["mkl"] and v["onednn"]
        assert v[numerics.IDENTITY] == v[numerics.TRAIN_IDENTITY] == numerics.identity_line(v)
    md = (results / "tables" / "gta.md").read_text()
    ours = [line for line in md.splitlines() if "(ours)" in line]
    assert len(ours) == 3 and not any("**" in line or "<u>" in line for line in ours)
    assert "Single-seed rows of ours are never bold" in md and "Numerics: numerics portable: " in md
