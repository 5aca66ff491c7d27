"""bench/trace_summary.py: self time is an op's time less its children's, per thread."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("trace_summary", ROOT / "bench" / "trace_summary.py")
trace_summary = importlib.util.module_from_spec(spec)
spec.loader.exec_module(trace_summary)


def ev(name, ts, dur, tid=1):
    return {"name": name, "ph": "X", "ts": ts, "dur": dur, "tid": tid, "pid": "CPU Functions", "args": {}}


def test_self_time_subtracts_nested_children_only():
    events = [
        ev("aten::matmul", 0, 100),      # parent
        ev("aten::mm", 10, 60),          # child of matmul
        ev("aten::empty", 15, 5),        # child of mm
        ev("aten::add", 120, 30),        # after, not nested
        ev("aten::mm", 0, 40, tid=2),    # another thread: its own stack
        {"name": "marker", "ph": "i", "ts": 5},  # not a complete event
    ]
    sums, span = trace_summary.summarise(events)
    assert sums["aten::matmul"] == [1, 100.0, 40.0]
    assert sums["aten::mm"] == [2, 100.0, 95.0]
    assert sums["aten::empty"] == [1, 5.0, 5.0]
    assert sums["aten::add"] == [1, 30.0, 30.0]
    assert span == 150.0


def test_cli_prints_per_step_figures(tmp_path):
    trace = tmp_path / "t.trace"
    trace.write_text(json.dumps([ev("aten::mm", 0, 1000), ev("aten::mm", 2000, 1000)]))
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "trace_summary.py"), str(trace), "--steps", "2"],
                         capture_output=True, text=True, check=True).stdout
    assert "1 op calls per step" in out
    assert "aten::mm" in out
    bad = subprocess.run([sys.executable, str(ROOT / "bench" / "trace_summary.py"), str(tmp_path / "missing")],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "missing" in bad.stderr
