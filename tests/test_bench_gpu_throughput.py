"""bench/gpu_throughput.py (what scripts/device_check.sh runs on a GPU) at tiny size on the CPU:
every task timed for both codes, outputs agree, the result is JSON."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))


@pytest.mark.parity
def test_tiny_run_on_cpu(tmp_path):
    import gpu_throughput

    out = tmp_path / "t.json"
    gpu_throughput.main(["--device", "cpu", "--size", "tiny", "--variants", "12", "-o", str(out)])
    result = json.loads(out.read_text())
    assert result["device"] == "cpu" and result["precision"] == "fp32"
    assert set(result["tasks"]) == {"embed", "vep", "fold"}
    for task, row in result["tasks"].items():
        official = row[next(k for k in row if k.startswith("official"))]
        assert row["nucfm"]["records_per_s"] > 0 and official["records_per_s"] > 0, task
        assert row["max_abs_diff"] < 1e-4, (task, row["max_abs_diff"])
    assert result["models"]["variants"] == 12 and result["tasks"]["vep"]["workload"].startswith("12 random SNVs")
