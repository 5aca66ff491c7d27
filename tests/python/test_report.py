"""Tests of analysis/report.py on a results file written by a real small sweep.

Run from the repository root with ``/usr/bin/python3 -m pytest -q tests/python``.
The sweep uses the built binary ``$PEFT_BUILD_DIR/bin/peft-sweep`` (default: the
repository's ``build/``); the tests are skipped when it is missing.
"""

import math
import os
import re
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPORT = os.path.join(REPO, "analysis", "report.py")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

SWEEP = """
[sweep]
name = "pytest_report"
output = "{output}"
seeds = [1]

[model]
preset = "tiny"

[train]
max_steps = 10
batch_size = 8
lr = 1e-3
eval_every = 5
inference_batch = 8
inference_repeats = 1

[grid]
method = ["lora", "head"]
rank = 4
dataset = ["synthetic_sentiment", "synthetic_mlm"]

[datasets.synthetic_sentiment]
synthetic_train = 96
synthetic_eval = 32
max_length = 32

[datasets.synthetic_mlm]
synthetic_train = 48
synthetic_eval = 16
block_size = 32
"""

FIGURES = ["quality_vs_params.png", "quality_vs_rank.png", "cost.png",
           "curves_synthetic_sentiment.png", "curves_synthetic_mlm.png"]

# table header -> (metric attribute, divisor)
COLUMNS = {
    "accuracy": ("accuracy", 1.0),
    "F1": ("f1", 1.0),
    "perplexity": ("perplexity", 1.0),
    "trainable params": ("trainable_params", 1.0),
    "adapter sparsity": ("adapter_sparsity", 1.0),
    "peak memory (MiB)": ("peak_memory_bytes", 1024.0 * 1024.0),
    "train time (s)": ("train_seconds", 1.0),
    "latency unmerged (ms)": ("inference_ms_batch1_unmerged", 1.0),
    "latency merged (ms)": ("inference_ms_batch1_merged", 1.0),
}
METHOD_NAMES = {"LoRA": "lora", "Sparse LoRA": "sparse_lora", "HiRA": "hira",
                "QLoRA": "qlora", "Full fine-tuning": "full", "Head only": "head"}


def binary():
    build = os.environ.get("PEFT_BUILD_DIR", os.path.join(REPO, "build"))
    if not os.path.isabs(build):
        build = os.path.join(REPO, build)
    return os.path.join(build, "bin", "peft-sweep")


def run_report(results, outdir):
    return subprocess.run([PYTHON, REPORT, str(results), "-o", str(outdir)],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="session")
def results(tmp_path_factory):
    exe = binary()
    if not os.access(exe, os.X_OK):
        pytest.skip(f"peft-sweep binary not found at {exe} (build the project first, "
                    "or set PEFT_BUILD_DIR)")
    d = tmp_path_factory.mktemp("sweep")
    out = d / "results.h5"
    toml = d / "sweep.toml"
    toml.write_text(SWEEP.format(output=out))
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    p = subprocess.run([exe, str(toml)], cwd=d, env=env, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, f"sweep failed:\n{p.stdout}\n{p.stderr}"
    assert out.exists()
    return out


@pytest.fixture(scope="session")
def report(results, tmp_path_factory):
    outdir = tmp_path_factory.mktemp("report")
    p = run_report(results, outdir)
    assert p.returncode == 0, p.stderr
    return outdir


def parse_tables(md):
    """{dataset: [ {header: cell} ]} from the '### label (dataset)' sections."""
    tables, ds = {}, None
    for line in md.splitlines():
        m = re.match(r"^### .*\((\w+)\)\s*$", line)
        if m:
            ds = m.group(1)
            tables[ds] = []
            header = None
            continue
        if line.startswith("## "):
            ds = None
        if ds is None or not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
        elif not set(line) <= set("|-"):
            tables[ds].append(dict(zip(header, cells)))
    return tables


def parse_cell(cell):
    """(mean, std or None, decimals) of 'x', 'x ± y', bold or not."""
    cell = cell.replace("**", "").replace(",", "")
    parts = [p.strip() for p in cell.split("±")]
    dec = len(parts[0].split(".")[1]) if "." in parts[0] else 0
    return float(parts[0]), (float(parts[1]) if len(parts) > 1 else None), dec


def trial_values(results):
    out = []
    with h5py.File(results, "r") as f:
        for tid, g in f["trials"].items():
            a = g.attrs
            method = a["method.name"]
            out.append({
                "id": tid, "status": a["status"], "method": method,
                "dataset": a["dataset.name"],
                "rank": a.get("method.rank", "—") if method != "head" else "—",
                "metrics": {k: float(v) for k, v in g["metrics"].attrs.items()},
            })
    return out


def test_figures_exist(report):
    for name in FIGURES:
        p = report / name
        assert p.exists(), f"{name} missing"
        data = p.read_bytes()
        assert len(data) > 5000, f"{name} is nearly empty"
        assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{name} is not a PNG"
    assert (report / "report.md").stat().st_size > 0
    html = (report / "report.html").read_text()
    assert "<table>" in html and "quality_vs_params.png" in html


def test_table_values_equal_hdf5(results, report):
    tables = parse_tables((report / "report.md").read_text())
    trials = trial_values(results)
    assert set(tables) == {"synthetic_sentiment", "synthetic_mlm"}
    checked = 0
    for ds, rows in tables.items():
        assert len(rows) == 2, rows  # lora r=4 and head
        for row in rows:
            method = METHOD_NAMES[row["method"]]
            mine = [t for t in trials if t["dataset"] == ds and t["method"] == method
                    and str(t["rank"]) == row["rank"]]
            assert len(mine) == int(row["seeds"])
            for header, (attr, scale) in COLUMNS.items():
                if header not in row:
                    continue
                vals = np.array([t["metrics"].get(attr, np.nan) for t in mine]) / scale
                vals = vals[np.isfinite(vals)]
                if row[header] == "—":
                    assert len(vals) == 0, (ds, method, header)
                    continue
                mean, std, dec = parse_cell(row[header])
                tol = 0.5 * 10.0 ** -dec + 1e-9 * abs(mean)
                assert math.isclose(mean, vals.mean(), abs_tol=tol), \
                    (ds, method, header, row[header], vals)
                if std is not None:
                    assert math.isclose(std, vals.std(ddof=1), abs_tol=tol)
                checked += 1
    assert checked >= 20
    # the quality column follows the task: accuracy for classification, perplexity for MLM
    assert "accuracy" in tables["synthetic_sentiment"][0]
    assert "perplexity" in tables["synthetic_mlm"][0]


def test_not_hdf5_is_refused(tmp_path):
    bad = tmp_path / "notes.h5"
    bad.write_text("hello\n")
    p = run_report(bad, tmp_path / "out")
    assert p.returncode == 2
    assert f"{bad} is not a peft-sweep results file" in p.stderr


def test_foreign_hdf5_is_refused(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.arange(3)
        f.attrs["creator"] = "someone else"
    p = run_report(other, tmp_path / "out")
    assert p.returncode == 2
    assert f"{other} is not a peft-sweep results file" in p.stderr
    assert "Traceback" not in p.stderr


def test_failed_and_missing_trials_are_listed(results, tmp_path):
    partial = tmp_path / "partial.h5"
    shutil.copy(results, partial)
    with h5py.File(partial, "a") as f:
        ids = sorted(f["trials"])
        failed, gone = ids[0], ids[1]
        f["trials"][failed].attrs["status"] = "failed"
        f["trials"][failed].attrs["error"] = "out of memory (injected by the test)"
        gone_method = f["trials"][gone].attrs["method.name"]
        del f["trials"][gone]
    p = run_report(partial, tmp_path / "out")
    assert p.returncode == 0, p.stderr
    md = (tmp_path / "out" / "report.md").read_text()
    section = md.split("## Failed, diverged and missing trials", 1)[1]
    assert failed in section
    assert "out of memory (injected by the test)" in section
    assert "| failed |" in section
    assert "1 trial(s) of the sweep file are not in the results file" in section
    assert f"| {gone_method} |" in section
    # the failed and the missing trial are left out of the tables, the rest is there
    assert failed not in md.split("## Failed", 1)[0]
    assert (tmp_path / "out" / "quality_vs_params.png").exists()


def _load_report_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location("peft_report", REPORT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_error_bars_only_with_several_seeds():
    rep = _load_report_module()
    assert rep._err(np.array([np.nan, np.nan])) is None          # single seed: no bars at all
    both = rep._err(np.array([np.nan, 0.5]))
    assert np.isnan(both[0]) and both[1] == 0.5                   # no bar where n = 1


def test_single_seed_figures_draw_no_error_bars(results, tmp_path, monkeypatch):
    # The fixture sweep has one seed: every errorbar/bar call gets no error lengths.
    import matplotlib.axes
    rep = _load_report_module()
    seen = []
    real_errorbar, real_bar = matplotlib.axes.Axes.errorbar, matplotlib.axes.Axes.bar

    def errorbar(self, *a, **k):
        seen.append((k.get("xerr"), k.get("yerr")))
        return real_errorbar(self, *a, **k)

    def bar(self, *a, **k):
        seen.append((None, k.get("yerr")))
        return real_bar(self, *a, **k)

    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar", errorbar)
    monkeypatch.setattr(matplotlib.axes.Axes, "bar", bar)
    _, df, _, _ = rep.load(str(results))
    rep.fig_quality_vs_rank(df, str(tmp_path / "rank.png"))
    rep.fig_cost(df, str(tmp_path / "cost.png"))
    assert seen, "no error-bar plots were drawn"
    assert all(x is None and y is None for x, y in seen), seen


# ------------------------------------------------------------ event log: running trials

def _events(results):
    path = str(results) + ".events.jsonl"
    assert os.path.exists(path), "the sweep wrote no event log beside its results file"
    import json
    return [json.loads(line) for line in open(path)]


def test_event_log_of_the_sweep(results):
    lines = _events(results)
    kinds = [e["event"] for e in lines]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end", kinds[:3]
    with h5py.File(results, "r") as f:
        ids = set(f["trials"])
    assert {e["trial"] for e in lines if e["event"] == "trial_end"} == ids
    steps = [e for e in lines if e["event"] == "step"]
    assert steps and all(e["total_steps"] == 10 and 1 <= e["step"] <= 10 for e in steps)
    assert {"loss", "lr", "samples_per_second", "eta_seconds", "wall_seconds", "group",
            "time"} <= set(steps[0])
    evals = [e for e in lines if e["event"] == "eval"]
    assert len(evals) == 2 * len(ids)  # eval_every = 5 of 10 steps


def test_report_of_a_finished_sweep_has_no_running_trial(report):
    md = (report / "report.md").read_text()
    assert "## Running trials" in md and "No running trial" in md
    assert not (report / "running_curves.png").exists()


def _cut_off(results, tmp_path, keep_run_end):
    """A copy of the results file without its first trial, and of the event log without that
    trial's trial_end line (and without the run_end line unless keep_run_end): that trial is
    then running (or interrupted) from the report's point of view."""
    copy = tmp_path / "live.h5"
    shutil.copy(results, copy)
    with h5py.File(copy, "a") as f:
        tid = sorted(f["trials"])[0]
        del f["trials"][tid]
    import json
    kept = [e for e in _events(results)
            if not (e["event"] == "trial_end" and e.get("trial") == tid)
            and (keep_run_end or e["event"] != "run_end")]
    with open(str(copy) + ".events.jsonl", "w") as f:
        for e in kept:
            f.write(json.dumps(e) + "\n")
        f.write('{"event": "step", "trial": "' + tid + '", "ste')  # a line being appended
    return copy, tid, [e for e in kept if e["event"] == "step" and e["trial"] == tid]


def test_report_draws_running_trials_from_the_event_log(results, tmp_path, monkeypatch):
    live, tid, steps = _cut_off(results, tmp_path, keep_run_end=False)
    rep = _load_report_module()
    drawn = []
    real = rep.fig_running_curves

    def spy(unfinished, path):
        drawn.extend(unfinished)
        return real(unfinished, path)

    monkeypatch.setattr(rep, "fig_running_curves", spy)
    rep.build_report(str(live), str(tmp_path / "out"))
    assert [(t, s) for t, s, _ in drawn] == [(tid, "running")]
    attempt = drawn[0][2]
    assert attempt["step"] == [e["step"] for e in steps]
    assert attempt["loss"] == [e["loss"] for e in steps]
    png = tmp_path / "out" / "running_curves.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "out" / "report.md").read_text()
    section = md.split("## Running trials", 1)[1].split("## ", 1)[0]
    assert f"| {tid} | running |" in section
    assert f"| {steps[-1]['step']}/10 |" in section
    # --no-events: no section, no figure
    p = subprocess.run([PYTHON, REPORT, str(live), "-o", str(tmp_path / "plain"),
                        "--no-events"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "## Running trials" not in (tmp_path / "plain" / "report.md").read_text()
    assert not (tmp_path / "plain" / "running_curves.png").exists()


def test_a_trial_of_an_ended_run_is_interrupted_not_running(results, tmp_path):
    live, tid, _ = _cut_off(results, tmp_path, keep_run_end=True)
    p = run_report(live, tmp_path / "out")
    assert p.returncode == 0, p.stderr
    md = (tmp_path / "out" / "report.md").read_text()
    assert f"| {tid} | interrupted |" in md
    assert "| running |" not in md


def test_best_evaluation_is_recorded_and_reported_on_request(results, tmp_path):
    """Each trial records its best evaluation beside the last; --metric best reports it and
    the report says which one it shows."""
    with h5py.File(results, "r") as f:
        for tid, g in f["trials"].items():
            m = dict(g["metrics"].attrs)
            acc = g["eval"]["accuracy"][()]
            if np.isnan(acc).all():  # MLM: lowest eval loss
                loss = g["eval"]["loss"][()]
                assert m["best_eval_loss"] == loss.min()
                assert m["best_step"] == g["eval"]["step"][()][int(np.argmin(loss))]
            else:
                assert m["best_accuracy"] == acc.max()
                assert m["accuracy"] == acc[-1]
    out = tmp_path / "best"
    r = subprocess.run([PYTHON, REPORT, results, "-o", str(out), "--metric", "best", "--no-events"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    md = (out / "report.md").read_text()
    assert "the best evaluation of each trial" in md
    assert "of the best evaluation of each trial" in md


def _reference_csv(results, path, shift):
    """A bench/hf_reference.py CSV for the fixture sweep: each trial's quality moved by
    shift[(method, dataset)], a training time twice peft-sweep's, a floor per data set and
    one unsupported row."""
    lines = ["trial,dataset,method,rank,sparsity,seed,status,accuracy,perplexity,train_seconds,"
             "peak_rss_bytes,note",
             "synthetic_sentiment/bow-logreg,synthetic_sentiment,bow_logreg,,,,complete,0.55,,,,"
             "\"12 words\"",
             "synthetic_mlm/unigram,synthetic_mlm,unigram,,,,complete,,1e9,,,add-one",
             "synthetic_sentiment/qlora/r4/seed1,synthetic_sentiment,qlora,4,,1,unsupported,,,,,"
             "\"load: no CPU 4-bit backend\""]
    expect = {}
    for t in trial_values(results):
        m = t["metrics"]
        mlm = math.isnan(m["accuracy"])
        q = m["perplexity"] if mlm else m["accuracy"]
        d = shift[(t["method"], t["dataset"])]
        q_ref = q * (1 + d) if mlm else q - d
        rank = "4" if t["method"] == "lora" else ""
        lines.append(f"x,{t['dataset']},{t['method']},{rank},,1,complete,"
                     f"{'' if mlm else q_ref},{q_ref if mlm else ''},"
                     f"{2 * m['train_seconds']},{2 ** 30},")
        expect[(t["method"], t["dataset"])] = (q, q_ref, mlm)
    path.write_text("\n".join(lines) + "\n")
    return expect


def test_reference_table_sets_peft_beside_the_results(results, tmp_path):
    """--reference CSV: per data set, each method's quality beside PEFT's, the difference
    against the goal (1 accuracy point, 2 % perplexity), the floor, and the time ratio."""
    shift = {("lora", "synthetic_sentiment"): 0.005, ("head", "synthetic_sentiment"): 0.05,
             ("lora", "synthetic_mlm"): 0.01, ("head", "synthetic_mlm"): 0.10}
    ref = tmp_path / "hf.csv"
    expect = _reference_csv(results, ref, shift)
    out = tmp_path / "withref"
    r = subprocess.run([PYTHON, REPORT, results, "-o", str(out), "--reference", str(ref),
                        "--no-events"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    md = (out / "report.md").read_text()
    assert "## Against transformers + PEFT" in md
    # the summary tables are untouched by the extra section
    assert set(parse_tables(md)) == {"synthetic_sentiment", "synthetic_mlm"}
    rows = {}
    section = md.split("## Against transformers + PEFT", 1)[1].split("\n## ", 1)[0]
    header = None
    for line in section.splitlines():
        if not line.startswith("|") or set(line) <= set("|-"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "method":
            header = cells
            continue
        row = dict(zip(header, cells))
        ds = "synthetic_mlm" if "perplexity peft-sweep" in row else "synthetic_sentiment"
        rows[(METHOD_NAMES[row["method"]], ds)] = row
    for (method, ds), (q, q_ref, mlm) in expect.items():
        row = rows[(method, ds)]
        col = "perplexity" if mlm else "accuracy"
        assert parse_cell(row[f"{col} peft-sweep"])[0] == pytest.approx(q, abs=0.01 if mlm else 1e-4)
        assert parse_cell(row[f"{col} PEFT"])[0] == pytest.approx(q_ref, abs=0.01 if mlm else 1e-4)
        d = shift[(method, ds)]
        if mlm:
            want = 100 * (1 / (1 + d) - 1)
            assert row["difference"] == f"{want:+.1f} %"
            assert row["within goal"] == ("yes" if abs(want) <= 2 else "no")
            assert row["clears the floor"] == "yes"  # a floor of 1e9
        else:
            assert row["difference"] == f"{100 * d:+.1f} pt"
            assert row["within goal"] == ("yes" if 100 * d <= 1.0 else "no")
            assert row["clears the floor"] == ("yes" if q > 0.55 else "no")
        assert row["train time ratio"] == "0.50×"
        assert row["seeds (peft-sweep / PEFT)"] == "1 / 1"
    unsupported = rows[("qlora", "synthetic_sentiment")]
    assert unsupported["accuracy PEFT"].startswith("unsupported: load: no CPU 4-bit backend")
    assert unsupported["seeds (peft-sweep / PEFT)"] == "0 / 0"
    assert "Floor (bag-of-words logistic regression): accuracy 0.5500" in md


def test_a_bad_reference_file_is_refused(results, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    for path, says in ((bad, "columns"), (tmp_path / "absent.csv", "no such reference file")):
        r = subprocess.run([PYTHON, REPORT, results, "-o", str(tmp_path / "r"), "--reference",
                            str(path), "--no-events"], capture_output=True, text=True)
        assert r.returncode == 2, r.stderr
        assert str(path) in r.stderr and says in r.stderr


def test_sparsity_cost_table_shows_where_sparse_lora_is_cheaper_and_where_not():
    import pandas as pd
    rep = _load_report_module()

    def trial(method, seed, step_s, unmerged, merged, nonzero, sparsity=0.0):
        return {"status": "complete", "method": method, "dataset": "sst2", "rank": 8,
                "sparsity": sparsity, "seed": seed, "accuracy": 0.8,
                "train_seconds": 10 * step_s, "train_steps": 10.0,
                "inference_ms_batch1_unmerged": unmerged, "inference_ms_batch1_merged": merged,
                "peak_memory_bytes": 1e8, "optimizer_device_bytes": 8e6,
                "adapter_params": 1e6, "nonzero_adapter_params": nonzero,
                "adapter_sparsity": 1 - nonzero / 1e6}
    df = pd.DataFrame([trial("lora", 1, 1.0, 10.0, 9.0, 1e6), trial("lora", 2, 1.0, 10.0, 9.0, 1e6),
                       trial("sparse_lora", 1, 1.2, 10.1, 9.0, 2.5e5, 0.75),
                       trial("sparse_lora", 2, 1.2, 10.1, 9.0, 2.5e5, 0.75),
                       trial("head", 1, 0.5, 8.0, 8.0, 0)])
    header, rows, _ = rep.sparsity_cost_table(df)
    assert len(rows) == 1
    row = dict(zip(header, rows[0]))
    assert row["seeds (Sparse LoRA / LoRA)"] == "2 / 2"
    assert row["achieved sparsity"] == "0.750"
    assert row["time per step (×LoRA)"] == "1.200"
    assert row["latency unmerged (×LoRA)"] == "1.010"          # within ±2 %: the same
    assert row["adapter file (PEFT layout, zeros stored) (×LoRA)"] == "1.000"
    # a bitmask of 1e6 entries (125 kB) plus 2.5e5 fp32 values (1 MB) over 4 MB
    assert row["adapter stored sparse (bitmask + nonzeros) (×LoRA)"] == "0.281"
    assert row["cheaper in"] == "adapter stored sparse"
    assert row["not cheaper in"] == "time per step"
    # without a LoRA partner there is nothing to compare
    assert rep.sparsity_cost_table(df[df.method != "lora"]) is None
