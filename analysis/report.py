#!/usr/bin/python3
"""Report of a peft-sweep results file.

    python3 analysis/report.py RESULTS.h5 -o report/

Reads the HDF5 results file written by ``peft-sweep`` (layout in sweeps/SCHEMA.md,
"Results file") and writes into the output folder:

- ``report.md`` and ``report.html``: the sweep's settings, one summary table per data set
  (mean ± std over seeds for each method / rank / sparsity, best value per column in
  bold), and the list of failed, diverged, interrupted and missing trials;
- PNG figures: quality versus trainable parameters with the Pareto front, quality versus
  rank, quality versus achieved sparsity (Sparse LoRA), cost per method (peak memory,
  training time, inference latency merged / unmerged), and the training-loss and
  evaluation curves of the best trial per method and data set;
- when the sweep's event log ``RESULTS.h5.events.jsonl`` exists (or ``--events PATH``):
  the trials that are running (or were cut off) and not yet in the results file, with
  their step, loss and a figure of their training-loss curves (``running_curves.png``),
  drawn from the log while the sweep runs;
- with ``--reference CSV`` (the output of ``bench/hf_reference.py`` for the same sweep): per
  data set, peft-sweep's quality beside transformers + PEFT's (mean ± std over seeds, the
  difference against the goal of 1 accuracy point / 2 % perplexity), the floor, training
  seconds per trial and peak memory of each.

Quality is accuracy for classification data sets and perplexity (lower is better) for
masked-LM data sets. The report works on partial files: trials that failed or are
missing are listed, not fatal. A file that is not HDF5, or that lacks the root attribute
``peft_sweep_version``, is refused with exit status 2.

Only h5py, pandas, matplotlib (Agg) and numpy are used.
"""

import argparse
import html
import json
import math
import os
import sys
from collections import Counter

# Read-only, so no HDF5 file lock: a shared lock held while the sweep's rank 0 folds its part
# files into the results file would make that read-write open fail (see src/sweep/status.cpp).
os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")
import h5py  # noqa: E402
import numpy as np
import pandas as pd

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

try:  # Python >= 3.11; only needed to list missing trials
    import tomllib
except ImportError:  # pragma: no cover
    tomllib = None

METHOD_ORDER = ["lora", "sparse_lora", "hira", "qlora", "full", "head"]
METHOD_LABEL = {
    "lora": "LoRA", "sparse_lora": "Sparse LoRA", "hira": "HiRA", "qlora": "QLoRA",
    "full": "Full fine-tuning", "head": "Head only",
}
METHOD_MARKER = {"lora": "o", "sparse_lora": "s", "hira": "^", "qlora": "D",
                 "full": "P", "head": "X"}
METHOD_LINESTYLE = {"lora": "-", "sparse_lora": "--", "hira": "-.", "qlora": ":",
                    "full": "-", "head": (0, (5, 1, 1, 1, 1, 1))}
RANKED_METHODS = {"lora", "sparse_lora", "hira", "qlora"}
ALPHA_METHODS = {"lora", "sparse_lora", "qlora"}
MLM_DATASETS = {"wikitext2", "synthetic_mlm"}
DATASET_LABEL = {"sst2": "SST-2", "imdb": "IMDb", "wikitext2": "WikiText-2",
                 "synthetic_sentiment": "synthetic sentiment",
                 "synthetic_mlm": "synthetic MLM"}
MiB = 1024.0 * 1024.0


class NotResultsFile(Exception):
    """The input is not a peft-sweep results file."""


# ----------------------------------------------------------------------------- loading

def _str(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray) and v.shape == ():
        return _str(v[()])
    return str(v)


def _num(s, default=np.nan):
    try:
        return float(s)
    except (TypeError, ValueError):
        return default


def method_colour(method):
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    i = METHOD_ORDER.index(method) if method in METHOD_ORDER else \
        len(METHOD_ORDER) + sum(map(ord, method))
    return cycle[i % len(cycle)]


def method_label(m):
    return METHOD_LABEL.get(m, m)


def dataset_label(d):
    return DATASET_LABEL.get(d, d)


def load(path):
    """Read the results file: (root attributes, one row per trial, curves per trial id,
    ids left in /staging)."""
    if not os.path.isfile(path):
        raise NotResultsFile(f"{path} is not a peft-sweep results file (no such file)")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise NotResultsFile(f"{path} is not a peft-sweep results file (not HDF5: {e})")
    with f:
        if "peft_sweep_version" not in f.attrs:
            raise NotResultsFile(
                f"{path} is not a peft-sweep results file "
                "(root attribute peft_sweep_version is absent)")
        root = {k: (_str(v) if not np.isscalar(v) or isinstance(v, (bytes, str)) else v)
                for k, v in f.attrs.items()}
        rows, curves = [], {}
        trials = f["trials"] if "trials" in f else {}
        for tid in trials:
            g = trials[tid]
            a = {k: g.attrs[k] for k in g.attrs}
            method = _str(a.get("method.name", a.get("method", "?")))
            row = {
                "id": tid,
                "status": _str(a.get("status", "unknown")),
                "error": _str(a.get("error", "")),
                "diverged_step": int(a.get("diverged_step", -1)),
                "method": method,
                "dataset": _str(a.get("dataset.name", a.get("dataset", "?"))),
                "rank": int(_num(_str(a.get("method.rank", 0)), 0)),
                "sparsity": _num(_str(a.get("method.sparsity", 0)), 0.0),
                "seed": int(_num(_str(a.get("seed", -1)), -1)),
                "lr": _num(_str(a.get("train.lr", "nan"))),
                "wall_seconds": float(a.get("wall_seconds", np.nan)),
            }
            if method not in RANKED_METHODS:
                row["rank"] = 0
            if "metrics" in g:
                for k, v in g["metrics"].attrs.items():
                    row[k] = float(v)
            rows.append(row)
            c = {}
            for part in ("train", "eval"):
                if part in g:
                    c[part] = {k: np.asarray(g[part][k][:]) for k in g[part]}
            curves[tid] = c
        staging = list(f["staging"]) if "staging" in f else []
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame(columns=["id", "status", "error", "diverged_step", "method",
                                   "dataset", "rank", "sparsity", "seed", "lr",
                                   "wall_seconds"])
    return root, df, curves, staging


# ------------------------------------------------------------------ quality, grouping

def quality(dataset, df=None):
    """(column, label, higher_is_better) of the quality metric of a data set."""
    mlm = dataset in MLM_DATASETS
    if df is not None and not mlm and "accuracy" in df and "perplexity" in df:
        d = df[df.dataset == dataset]
        mlm = d["accuracy"].isna().all() and d["perplexity"].notna().any()
    if mlm:
        return "perplexity", "eval perplexity (lower is better)", False
    return "accuracy", "eval accuracy", True


def ordered_methods(methods):
    ms = list(dict.fromkeys(methods))
    return sorted(ms, key=lambda m: (METHOD_ORDER.index(m) if m in METHOD_ORDER else 99, m))


def usable(df):
    """Complete trials with a finite quality value."""
    if df.empty:
        return df
    ok = df[df.status == "complete"]
    keep = []
    for _, r in ok.iterrows():
        col, _, _ = quality(r.dataset, df)
        keep.append(col in r and np.isfinite(r[col]))
    return ok[keep] if len(ok) else ok


def best_trials(df):
    """The best usable trial per (dataset, method)."""
    out = {}
    for (ds, m), d in usable(df).groupby(["dataset", "method"]):
        col, _, hi = quality(ds, df)
        i = d[col].idxmax() if hi else d[col].idxmin()
        out[(ds, m)] = d.loc[i]
    return out


def pareto_front(x, y, higher_is_better):
    """Indices of the points not dominated (fewer parameters and better quality)."""
    order = np.lexsort((-y if higher_is_better else y, x))
    front, best = [], None
    for i in order:
        v = y[i]
        if best is None or (v > best if higher_is_better else v < best):
            front.append(i)
            best = v
    return front


# ------------------------------------------------------------------------------ figures

def _dodge(i, n, decades=0.03):
    """Multiplicative x offset of series i of n on a log axis, so that series with equal
    values do not hide each other."""
    return 10.0 ** ((i - (n - 1) / 2.0) * decades)


def _quality_axis(ax, col, values, axis="y"):
    """Perplexity on a log scale only when it spans more than a decade; plain numbers
    on the ticks either way."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v) & (v > 0)]
    if col == "perplexity" and len(v) and v.max() / v.min() > 10:
        getattr(ax, f"set_{axis}scale")("log")
        fmt = matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:g}")
        getattr(ax, f"{axis}axis").set_major_formatter(fmt)
        getattr(ax, f"{axis}axis").set_minor_formatter(matplotlib.ticker.NullFormatter())
    else:
        getattr(ax, f"{axis}axis").get_major_formatter().set_useOffset(False)


def _grid(n, w=5.0, h=3.8):
    cols = min(n, 2)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(w * cols, h * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _legend_below(fig, axes, ncol=None):
    handles, labels = {}, []
    for ax in axes:
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in handles:
                handles[l] = h
                labels.append(l)
    if labels:
        fig.legend([handles[l] for l in labels], labels, loc="lower center",
                   ncol=ncol or min(len(labels), 4), frameon=False)
    return len(labels)


def _finish(fig, path, nlegend_rows=1):
    bottom = 0.04 + 0.05 * nlegend_rows / max(1, fig.get_size_inches()[1] / 4)
    fig.tight_layout(rect=(0, bottom if nlegend_rows else 0, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _panels(trials):
    """One axis per data set of `trials`: (fig, axes, [(ax, data set, its trials)]), or None."""
    datasets = sorted(trials.dataset.unique())
    if not datasets:
        return None
    fig, axes = _grid(len(datasets))
    return fig, axes, [(ax, ds, trials[trials.dataset == ds]) for ax, ds in zip(axes, datasets)]


def fig_quality_vs_params(df, path):
    panels = _panels(usable(df))
    if panels is None:
        return None
    fig, axes, per_dataset = panels
    for ax, ds, d in per_dataset:
        col, label, hi = quality(ds, df)
        ms = ordered_methods(d.method)
        for i, m in enumerate(ms):
            dm = d[d.method == m]
            ax.scatter(dm.trainable_params * _dodge(i, len(ms)), dm[col],
                       label=method_label(m),
                       color=method_colour(m), marker=METHOD_MARKER.get(m, "o"),
                       s=40, alpha=0.85, edgecolors="black", linewidths=0.4, zorder=3)
        x, y = d.trainable_params.to_numpy(float), d[col].to_numpy(float)
        fr = pareto_front(x, y, hi)
        ax.step(x[fr], y[fr], where="post", color="black", lw=1.2, ls="--",
                label="Pareto front", zorder=2)
        ax.set_xscale("log")
        _quality_axis(ax, col, y)
        ax.set_xlabel("trainable parameters (log scale; markers of equal\n"
                      "counts drawn side by side)")
        ax.set_ylabel(label)
        ax.set_title(dataset_label(ds))
        ax.grid(True, which="major", alpha=0.3)
    n = _legend_below(fig, axes)
    fig.suptitle("Quality versus trainable parameters (one point per trial)")
    _finish(fig, path, math.ceil(n / 4))
    return path


def _err(std):
    """Error-bar lengths: NaN (no bar) where a point has one value; None when no point has
    more than one, so single-seed results get no error bars rather than ±0 ones."""
    values = np.asarray(std, dtype=float)
    return None if not np.isfinite(values).any() else values


def _mean_std(d, by, col):
    g = d.groupby(by)[col]
    return g.mean(), g.std(ddof=1)


def fig_quality_vs_rank(df, path):
    panels = _panels(usable(df))
    if panels is None:
        return None
    fig, axes, per_dataset = panels
    for ax, ds, d in per_dataset:
        col, label, _ = quality(ds, df)
        ranks = sorted(d[d.method.isin(RANKED_METHODS)]["rank"].unique())
        ranked = [m for m in ordered_methods(d.method) if m in RANKED_METHODS]
        for m in ordered_methods(d.method):
            dm = d[d.method == m]
            c = method_colour(m)
            if m in RANKED_METHODS:
                mean, std = _mean_std(dm, "rank", col)
                x = mean.index.to_numpy(float) * _dodge(ranked.index(m), len(ranked),
                                                         0.012)
                ax.errorbar(x, mean.values, yerr=_err(std), color=c,
                            marker=METHOD_MARKER.get(m, "o"), capsize=3,
                            label=method_label(m))
            else:  # no rank: a horizontal reference line
                mu = dm[col].mean()
                ax.axhline(mu, color=c, ls=":", lw=1.5,
                           label=f"{method_label(m)} (no rank)")
        if ranks:
            ax.set_xscale("log", base=2)
            ax.set_xticks(ranks)
            ax.set_xticklabels([str(r) for r in ranks])
            ax.minorticks_off()
            ax.set_xlim(min(ranks) / 1.35, max(ranks) * 1.35)
        _quality_axis(ax, col, d[col])
        ax.set_xlabel("adapter rank r (log scale; methods drawn side by side)")
        ax.set_ylabel(label + "\nmean ± std over seeds (no bar: one seed)")
        ax.set_title(dataset_label(ds))
        ax.grid(True, alpha=0.3)
    n = _legend_below(fig, axes, ncol=3)
    fig.suptitle("Quality versus rank")
    _finish(fig, path, math.ceil(n / 3))
    return path


def fig_quality_vs_sparsity(df, path):
    ok = usable(df)
    ok = ok[ok.method == "sparse_lora"]
    if ok.empty or "adapter_sparsity" not in ok:
        return None
    fig, axes, per_dataset = _panels(ok)
    cmap = plt.get_cmap("viridis")
    ranks = sorted(ok["rank"].unique())
    for ax, ds, d in per_dataset:
        col, label, _ = quality(ds, df)
        for i, r in enumerate(ranks):
            dr = d[d["rank"] == r]
            if dr.empty:
                continue
            g = dr.groupby("sparsity")
            x, xe = g["adapter_sparsity"].mean(), g["adapter_sparsity"].std(ddof=1)
            y, ye = g[col].mean(), g[col].std(ddof=1)
            c = cmap(i / max(1, len(ranks) - 1) * 0.85)
            # markers shrink with the rank so that equal results stay visible
            ax.errorbar(x.values, y.values, xerr=_err(xe), yerr=_err(ye), color=c,
                        marker="osD^v"[i % 5], ms=max(3, 10 - 2.5 * i), capsize=3,
                        alpha=0.9, label=f"rank {r}")
        _quality_axis(ax, col, d[col])
        ax.set_xlabel("achieved adapter sparsity (fraction of zeros)")
        ax.set_ylabel(label + "\nmean ± std over seeds (no bar: one seed)")
        ax.set_title(f"Sparse LoRA, {dataset_label(ds)}")
        ax.grid(True, alpha=0.3)
    n = _legend_below(fig, axes)
    fig.suptitle("Sparse LoRA: quality versus achieved sparsity")
    _finish(fig, path, math.ceil(n / 4))
    return path


def fig_cost(df, path):
    ok = df[df.status == "complete"] if not df.empty else df
    need = ["peak_memory_bytes", "train_seconds"]
    if ok.empty or not all(c in ok for c in need):
        return None
    datasets = sorted(ok.dataset.unique())
    fig, axes = plt.subplots(len(datasets), 3, figsize=(15, 3.6 * len(datasets)),
                             squeeze=False)
    lat = [("inference_ms_batch1_unmerged", "unmerged", None),
           ("inference_ms_batch1_merged", "merged", "//")]
    for row, ds in zip(axes, datasets):
        d = ok[ok.dataset == ds]
        methods = ordered_methods(d.method)
        x = np.arange(len(methods))
        cols = [method_colour(m) for m in methods]
        for ax, (col, scale, ylab) in zip(row[:2], [
                ("peak_memory_bytes", MiB, "peak memory (MiB)"),
                ("train_seconds", 1.0, "training time (s)")]):
            g = d.groupby("method")[col]
            mean = g.mean().reindex(methods) / scale
            std = g.std(ddof=1).reindex(methods) / scale
            ax.bar(x, mean.values, yerr=_err(std), color=cols, capsize=3,
                   edgecolor="black", linewidth=0.5)
            ax.set_ylabel(ylab)
        ax = row[2]
        w = 0.38
        for j, (col, name, hatch) in enumerate(lat):
            if col not in d:
                continue
            g = d.groupby("method")[col]
            mean, std = g.mean().reindex(methods), g.std(ddof=1).reindex(methods)
            xs = x + (j - 0.5) * w
            ax.bar(xs, mean.fillna(0).values, w, yerr=_err(std), color=cols,
                   hatch=hatch, capsize=3, edgecolor="black", linewidth=0.5,
                   label=name)
            for xi, v in zip(xs, mean.values):
                if not np.isfinite(v):
                    ax.text(xi, 0, "n/a", ha="center", va="bottom", fontsize=8)
        ax.set_ylabel("inference latency, batch 1 (ms)")
        ax.legend(handles=[Patch(facecolor="white", edgecolor="black", label="unmerged"),
                           Patch(facecolor="white", edgecolor="black", hatch="//",
                                 label="merged")], loc="upper left", fontsize=8)
        for ax, t in zip(row, ["Peak memory", "Training time", "Inference latency"]):
            ax.set_xticks(x)
            ax.set_xticklabels([method_label(m) for m in methods], rotation=30,
                               ha="right")
            ax.set_title(f"{t}, {dataset_label(ds)}")
            ax.grid(True, axis="y", alpha=0.3)
            ax.set_ylim(bottom=0)
    fig.suptitle("Cost per method (mean ± std over the trials of each method, no bar for "
                 "a single trial; n/a: not measured)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def fig_curves(df, curves, dataset, path):
    best = {m: r for (ds, m), r in best_trials(df).items() if ds == dataset}
    if not best:
        return None
    col, label, _ = quality(dataset, df)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for m in ordered_methods(best):
        r = best[m]
        c = curves.get(r.id, {})
        name = method_label(m) + (f" r={r['rank']}" if m in RANKED_METHODS else "") + \
            (f" s={r.sparsity:g}" if m == "sparse_lora" else "")
        kw = dict(color=method_colour(m), label=name, ls=METHOD_LINESTYLE.get(m, "-"))
        if "train" in c and len(c["train"].get("step", [])):
            a1.plot(c["train"]["step"], c["train"]["loss"], lw=1.2, **kw)
        if "eval" in c and len(c["eval"].get("step", [])) and col in c["eval"]:
            a2.plot(c["eval"]["step"], c["eval"][col], marker=METHOD_MARKER.get(m, "o"),
                    ms=4, **kw)
    a1.set_xlabel("optimizer step")
    a1.set_ylabel("training loss")
    a1.set_title("Training loss")
    a2.set_xlabel("optimizer step")
    a2.set_ylabel(label)
    a2.set_title("Evaluation")
    _quality_axis(a2, col, [v for r in best.values()
                            for v in curves.get(r.id, {}).get("eval", {}).get(col, [])])
    for a in (a1, a2):
        a.grid(True, alpha=0.3)
        a.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    n = _legend_below(fig, [a1, a2], ncol=3)
    fig.suptitle(f"Best trial per method, {dataset_label(dataset)}")
    _finish(fig, path, math.ceil(n / 3) * 1.3)
    return path


# ------------------------------------------------------------------------ event log

def events_path(results):
    return str(results) + ".events.jsonl"


def load_events(path):
    """Read the sweep's event log (README "Watching a sweep"). Returns (live, trials):
    live is True when the last run has no run_end line; trials maps a trial id to its last
    attempt: {"run", "group", "label", "step", "loss", "lr", "total_steps", "ended",
    "status", "eval_step", "eval"}, with the step/loss/lr lists of that attempt. Lines that
    are not JSON objects (one being appended) are skipped."""
    live, runs, trials = False, 0, {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if not isinstance(e, dict):
                continue
            ev = e.get("event")
            if ev == "run_start":
                runs += 1
                live = True
                continue
            if ev == "run_end":
                live = False
                continue
            tid = e.get("trial")
            if not tid:
                continue
            if ev == "trial_start" or tid not in trials:
                trials[tid] = {"run": runs, "group": e.get("group"),
                               "label": e.get("label", ""), "step": [], "loss": [],
                               "lr": [], "total_steps": None, "ended": False,
                               "status": None, "eval_step": [], "eval": []}
            t = trials[tid]
            if ev == "step":
                t["step"].append(e.get("step"))
                t["loss"].append(np.nan if e.get("loss") is None else e["loss"])
                t["lr"].append(np.nan if e.get("lr") is None else e["lr"])
                t["total_steps"] = e.get("total_steps")
            elif ev == "eval":
                t["eval_step"].append(e.get("step"))
                t["eval"].append(e)
            elif ev == "trial_end":
                t["ended"] = True
                t["status"] = e.get("status")
    for t in trials.values():
        t["current"] = t["run"] == runs
    return live, trials


def unfinished_trials(events, df):
    """[(id, state, attempt)] of the trials of the event log with no trial_end line and not
    complete in the results file: "running" while the run lives, else "interrupted"."""
    live, trials = events
    done = set(df[df.status == "complete"].id) if not df.empty else set()
    out = []
    for tid, t in trials.items():
        if t["ended"] or tid in done:
            continue
        state = "running" if live and t["current"] else "interrupted"
        out.append((tid, state, t))
    return sorted(out, key=lambda x: (x[1] != "running", x[2]["label"], x[0]))


def fig_running_curves(unfinished, path):
    """Training loss against step of the unfinished trials, from the event log."""
    drawn = [(tid, st, t) for tid, st, t in unfinished if t["step"]]
    if not drawn:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.5))
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (tid, state, t) in enumerate(drawn):  # one colour per trial
        total = t["total_steps"] or "?"
        ax.plot(t["step"], t["loss"], lw=1.2, color=cycle[i % len(cycle)],
                ls="-" if state == "running" else ":",
                label=f"{tid} {t['label']} ({state}, {t['step'][-1]}/{total})")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.grid(True, alpha=0.3)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title("Trials not yet in the results file (from the event log; "
                 "dotted: interrupted)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------- tables

# (column, header, format, scale, best: "max" | "min" | None)
def table_columns(dataset, df):
    col, _, hi = quality(dataset, df)
    cols = [(col, "perplexity" if col == "perplexity" else "accuracy",
             ".2f" if col == "perplexity" else ".4f", 1.0, "max" if hi else "min")]
    if col == "accuracy":
        cols.append(("f1", "F1", ".4f", 1.0, "max"))
    cols += [
        ("trainable_params", "trainable params", ",.0f", 1.0, "min"),
        ("adapter_sparsity", "adapter sparsity", ".3f", 1.0, None),
        ("peak_memory_bytes", "peak memory (MiB)", ".1f", MiB, "min"),
        ("train_seconds", "train time (s)", ".2f", 1.0, "min"),
        ("inference_ms_batch1_unmerged", "latency unmerged (ms)", ".2f", 1.0, "min"),
        ("inference_ms_batch1_merged", "latency merged (ms)", ".2f", 1.0, "min"),
    ]
    return [c for c in cols if c[0] in df]


def summary_table(df, dataset):
    """(header, rows, bold) of one data set: mean ± std per method/rank/sparsity."""
    ok = usable(df)
    d = ok[ok.dataset == dataset]
    cols = table_columns(dataset, df)
    header = ["method", "rank", "sparsity", "seeds"] + [c[1] for c in cols]
    groups = []
    for (m, r, s), g in d.groupby(["method", "rank", "sparsity"]):
        groups.append((m, r, s, g))
    groups.sort(key=lambda t: (METHOD_ORDER.index(t[0]) if t[0] in METHOD_ORDER else 99,
                               t[0], t[1], t[2]))
    means = np.array([[g[c[0]].mean() / c[3] for c in cols] for *_, g in groups]) \
        if groups else np.zeros((0, len(cols)))
    rows, bold = [], []
    for i, (m, r, s, g) in enumerate(groups):
        cells = [method_label(m), str(r) if m in RANKED_METHODS else "—",
                 f"{s:g}" if m == "sparse_lora" else "—", str(len(g))]
        b = [False] * 4
        for j, (col, _, fmt, scale, best) in enumerate(cols):
            v = g[col].to_numpy(float) / scale
            v = v[np.isfinite(v)]
            if len(v) == 0:
                cells.append("—")
                b.append(False)
                continue
            txt = format(v.mean(), fmt)
            if len(v) > 1 and col != "trainable_params":  # a count: the same per seed
                txt += " ± " + format(v.std(ddof=1), fmt)
            cells.append(txt)
            colv = means[:, j]
            fin = colv[np.isfinite(colv)]
            shown = {format(x, fmt) for x in fin}
            is_best = best is not None and len(shown) > 1 and np.isfinite(means[i, j]) \
                and format(means[i, j], fmt) == format(fin.max() if best == "max" else
                                                       fin.min(), fmt)
            b.append(bool(is_best))
        rows.append(cells)
        bold.append(b)
    return header, rows, bold


# ------------------------------------------------- what Sparse LoRA's sparsity saves

SAME_BAND = 0.02   # a ratio within 1 ± 2 % counts as "the same"


def sparse_storage_bytes(total, nonzero):
    """Bytes of an fp32 adapter stored sparsely: a bitmask of every entry plus the nonzero
    values (the smaller of that and the dense fp32 array)."""
    return min(4.0 * total, total / 8.0 + 4.0 * nonzero)


def sparsity_cost_table(df):
    """(header, rows, bold) of every Sparse LoRA group (data set, rank, sparsity) against the
    LoRA trials of the same data set and rank: time per training step, latency unmerged and
    merged, peak memory, optimizer state and adapter bytes, each as Sparse LoRA over LoRA (means
    over seeds; < 1 is cheaper), and where it is cheaper and where not. None when no Sparse
    LoRA group has a LoRA partner."""
    ok = usable(df)
    if ok.empty or "sparse_lora" not in set(ok.method) or "lora" not in set(ok.method):
        return None
    ok = ok.copy()
    if "train_seconds" in ok and "train_steps" in ok:
        ok["step_ms"] = 1000.0 * ok["train_seconds"] / ok["train_steps"].where(ok["train_steps"] > 0)
    if "adapter_params" in ok:
        ok["dense_bytes"] = 4.0 * ok["adapter_params"]
        nz = ok["nonzero_adapter_params"] if "nonzero_adapter_params" in ok else ok["adapter_params"]
        ok["sparse_bytes"] = [sparse_storage_bytes(t, n) for t, n in zip(ok["adapter_params"], nz)]
    # (column, label, what LoRA is measured by)
    ratios = [("step_ms", "time per step", "step_ms"),
              ("inference_ms_batch1_unmerged", "latency unmerged", "inference_ms_batch1_unmerged"),
              ("inference_ms_batch1_merged", "latency merged", "inference_ms_batch1_merged"),
              ("peak_memory_bytes", "peak memory", "peak_memory_bytes"),
              ("optimizer_device_bytes", "optimizer state", "optimizer_device_bytes"),
              ("dense_bytes", "adapter file (PEFT layout, zeros stored)", "dense_bytes"),
              ("sparse_bytes", "adapter stored sparse (bitmask + nonzeros)", "dense_bytes")]
    ratios = [r for r in ratios if r[0] in ok and r[2] in ok]
    header = ["data set", "rank", "sparsity", "seeds (Sparse LoRA / LoRA)", "achieved sparsity"] + \
             [f"{label} (×LoRA)" for _, label, _ in ratios] + ["cheaper in", "not cheaper in"]
    rows, bold = [], []
    sp = ok[ok.method == "sparse_lora"]
    for (ds, r, s), g in sorted(sp.groupby(["dataset", "rank", "sparsity"])):
        lo = ok[(ok.method == "lora") & (ok.dataset == ds) & (ok["rank"] == r)]
        if lo.empty:
            continue
        cells = [str(ds), str(r), f"{s:g}", f"{len(g)} / {len(lo)}",
                 format(g["adapter_sparsity"].mean(), ".3f") if "adapter_sparsity" in g else "—"]
        cheaper, dearer = [], []
        for col, label, ref in ratios:
            a, b = g[col].to_numpy(float), lo[ref].to_numpy(float)
            a, b = a[np.isfinite(a)], b[np.isfinite(b)]
            if len(a) == 0 or len(b) == 0 or b.mean() <= 0:
                cells.append("—")
                continue
            q = a.mean() / b.mean()
            cells.append(format(q, ".3f"))
            short = label.split(" (")[0]
            if q < 1 - SAME_BAND:
                cheaper.append(short)
            elif q > 1 + SAME_BAND:
                dearer.append(short)
        cells += [", ".join(cheaper) or "nothing", ", ".join(dearer) or "nothing"]
        rows.append(cells)
        bold.append([False] * len(cells))
    return (header, rows, bold) if rows else None


# ------------------------------------------------------- against transformers + PEFT

FLOOR_METHODS = {"bow_logreg": "bag-of-words logistic regression",
                 "unigram": "unigram word-piece frequencies"}
GOAL_POINTS = 1.0      # accuracy: |peft-sweep - PEFT| <= 1.0 point (means over seeds)
GOAL_PPL_REL = 0.02    # perplexity: within 2 %


def load_reference(path):
    """The CSV of bench/hf_reference.py: (trials, floors) as DataFrames with the results
    file's key columns (method, dataset, rank 0 for unranked methods, sparsity 0 unless
    sparse_lora, seed)."""
    if not os.path.isfile(path):
        raise NotResultsFile(f"{path}: no such reference file (bench/hf_reference.py --out)")
    try:
        ref = pd.read_csv(path)
    except (ValueError, pd.errors.ParserError) as e:
        raise NotResultsFile(f"{path}: not a reference CSV ({e})")
    need = {"dataset", "method", "status"}
    if not need <= set(ref.columns):
        raise NotResultsFile(f"{path}: not a reference CSV of bench/hf_reference.py "
                             f"(columns {sorted(need - set(ref.columns))} missing)")
    for c in ("accuracy", "perplexity", "train_seconds", "peak_rss_bytes", "seed", "rank",
              "sparsity"):
        ref[c] = pd.to_numeric(ref[c], errors="coerce") if c in ref else np.nan
    ref["rank"] = ref["rank"].fillna(0).astype(int)
    ref.loc[~ref.method.isin(RANKED_METHODS), "rank"] = 0
    ref["sparsity"] = ref["sparsity"].fillna(0.0)
    ref.loc[ref.method != "sparse_lora", "sparsity"] = 0.0
    ref["note"] = ref["note"].fillna("").astype(str) if "note" in ref else ""
    floors = ref[ref.method.isin(FLOOR_METHODS)]
    return ref[~ref.method.isin(FLOOR_METHODS)], floors


def _ms(v, fmt):
    v = np.asarray(v, float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return "—", np.nan
    txt = format(v.mean(), fmt)
    if len(v) > 1:
        txt += " ± " + format(v.std(ddof=1), fmt)
    return txt, v.mean()


def reference_table(df, ref, floors, dataset):
    """(header, rows, summary) comparing each method/rank/sparsity of a data set with the
    same trials run by transformers + PEFT: quality mean ± std over seeds, the difference
    against the goal (1.0 accuracy point, 2 % perplexity), whether the floor is cleared,
    training seconds per trial and peak memory of each."""
    col, _, hi = quality(dataset, df)
    ours = usable(df)
    ours = ours[ours.dataset == dataset] if len(ours) else ours
    theirs = ref[ref.dataset == dataset]
    fl = floors[(floors.dataset == dataset)][col].dropna() if col in floors else pd.Series([], dtype=float)
    floor = float(fl.iloc[0]) if len(fl) else np.nan
    fmt = ".2f" if col == "perplexity" else ".4f"
    keys = {(r.method, int(r["rank"]), float(r.sparsity)) for _, r in ours.iterrows()}
    keys |= {(r.method, int(r["rank"]), float(r.sparsity)) for _, r in theirs.iterrows()}
    keys = sorted(keys, key=lambda k: (METHOD_ORDER.index(k[0]) if k[0] in METHOD_ORDER
                                       else 99, k))
    header = ["method", "rank", "sparsity", "seeds (peft-sweep / PEFT)",
              f"{col} peft-sweep", f"{col} PEFT", "difference", "within goal",
              "clears the floor", "train s peft-sweep", "train s PEFT",
              "train time ratio", "peak MiB peft-sweep", "peak MiB PEFT"]
    rows, n_goal, n_fast, n_both = [], 0, 0, 0
    for m, r, sp in keys:
        a = ours[(ours.method == m) & (ours["rank"] == r) & (ours.sparsity == sp)] \
            if len(ours) else ours
        b_all = theirs[(theirs.method == m) & (theirs["rank"] == r) & (theirs.sparsity == sp)]
        b = b_all[b_all.status == "complete"]
        q_a, mean_a = _ms(a[col] if len(a) else [], fmt)
        q_b, mean_b = _ms(b[col] if len(b) else [], fmt)
        if len(b) == 0 and len(b_all):
            why = "; ".join(sorted({f"{st}: {n}" if n else st
                                    for st, n in zip(b_all.status, b_all.note)}))
            q_b = why[:160]
        diff, goal = "—", "—"
        if np.isfinite(mean_a) and np.isfinite(mean_b):
            n_both += 1
            if col == "perplexity":
                rel = mean_a / mean_b - 1.0
                diff, ok = f"{100 * rel:+.1f} %", abs(rel) <= GOAL_PPL_REL
            else:
                pts = 100.0 * (mean_a - mean_b)
                diff, ok = f"{pts:+.1f} pt", abs(pts) <= GOAL_POINTS
            goal = "yes" if ok else "no"
            n_goal += ok
        clears = "—"
        if np.isfinite(mean_a) and np.isfinite(floor):
            clears = "yes" if (mean_a > floor if hi else mean_a < floor) else "no"
        t_a, tm_a = _ms(a["train_seconds"] if len(a) and "train_seconds" in a else [], ".1f")
        t_b, tm_b = _ms(b["train_seconds"] if len(b) else [], ".1f")
        ratio = "—"
        if np.isfinite(tm_a) and np.isfinite(tm_b) and tm_b > 0:
            ratio = f"{tm_a / tm_b:.2f}×"
            n_fast += tm_a < tm_b
        mem_a, _ = _ms(a["peak_memory_bytes"] / MiB
                       if len(a) and "peak_memory_bytes" in a else [], ".0f")
        mem_b, _ = _ms(b["peak_rss_bytes"] / MiB if len(b) else [], ".0f")
        rows.append([method_label(m), str(r) if m in RANKED_METHODS else "—",
                     f"{sp:g}" if m == "sparse_lora" else "—", f"{len(a)} / {len(b)}",
                     q_a, q_b, diff, goal, clears, t_a, t_b, ratio, mem_a, mem_b])
    summary = {"floor": floor, "within_goal": n_goal, "faster": n_fast, "compared": n_both,
               "column": col}
    return header, rows, summary


def reference_blocks(df, ref_path):
    """Report blocks of the comparison with bench/hf_reference.py's CSV."""
    ref, floors = load_reference(ref_path)
    blocks = [("h2", "Against transformers + PEFT"),
              ("p", f"Reference: {os.path.abspath(ref_path)} (bench/hf_reference.py: the same "
                    "trials, base, data caps, hyperparameters, steps and seeds, run with "
                    "transformers + peft). Quality is the mean ± std over seeds; the goal "
                    f"is a mean within {GOAL_POINTS:g} accuracy point or "
                    f"{100 * GOAL_PPL_REL:g} % perplexity of PEFT's. Training time is the "
                    "seconds in the training steps per trial (evaluation excluded) and the "
                    "ratio is peft-sweep's over PEFT's (below 1: peft-sweep is faster). Peak "
                    "memory is the process's peak RSS during training for peft-sweep and "
                    "the trial process's peak RSS for PEFT (Python and torch included).")]
    for ds in ordered_datasets(set(df.dataset) | set(ref.dataset) if len(df) else
                               set(ref.dataset)):
        header, rows, sm = reference_table(df, ref, floors, ds)
        if not rows:
            continue
        blocks.append(("h3", f"{dataset_label(ds)}: peft-sweep and transformers + PEFT"))
        fl = floors[floors.dataset == ds]
        if np.isfinite(sm["floor"]):
            name = FLOOR_METHODS.get(fl.method.iloc[0], fl.method.iloc[0])
            blocks.append(("p", f"Floor ({name}): {sm['column']} "
                                f"{sm['floor']:{'.2f' if sm['column'] == 'perplexity' else '.4f'}}" + (f" ({fl.note.iloc[0]})"
                                                         if fl.note.iloc[0] else "")))
        blocks.append(("table", header, rows, None))
        blocks.append(("p", f"{sm['within_goal']} of {sm['compared']} compared rows within "
                            f"the goal; peft-sweep faster per trial in {sm['faster']} of "
                            f"{sm['compared']}."))
    return blocks


def ordered_datasets(ds):
    order = ["sst2", "imdb", "wikitext2", "synthetic_sentiment", "synthetic_mlm"]
    return sorted(ds, key=lambda d: (order.index(d) if d in order else 99, d))


# ------------------------------------------------------------------ failed and missing

def expected_trials(toml_text):
    """Counter of (method, dataset, rank, sparsity, seed) the sweep file asks for, or
    None when it cannot be read."""
    if tomllib is None or not toml_text:
        return None
    try:
        t = tomllib.loads(toml_text)
    except Exception:
        return None

    def axis(v):
        return list(v) if isinstance(v, list) else [v]

    grid = t.get("grid", {})
    methods_cfg = t.get("methods", {})
    method_cfg = t.get("method", {})
    seeds = axis(grid.get("seed", t.get("sweep", {}).get("seeds", [1])))
    lrs = len(axis(grid["lr"])) if "lr" in grid else 1
    alphas = len(axis(grid["alpha"])) if "alpha" in grid else 1
    out = Counter()
    for m in axis(grid.get("method", [])):
        mc = methods_cfg.get(m, {})
        ranks = axis(grid["rank"]) if "rank" in grid else \
            [mc.get("rank", method_cfg.get("rank", 8))]
        if m not in RANKED_METHODS:
            ranks = [0]
        if m == "sparse_lora":
            sps = axis(grid["sparsity"]) if "sparsity" in grid else [mc.get("sparsity", 0)]
        else:
            sps = [0.0]
        mult = lrs * (alphas if m in ALPHA_METHODS else 1)
        for ds in axis(grid.get("dataset", [])):
            for r in ranks:
                for s in sps:
                    for seed in seeds:
                        out[(m, ds, int(r), round(float(s), 6), int(seed))] += mult
    return out


def missing_trials(root, df):
    exp = expected_trials(root.get("sweep_toml", ""))
    if exp is None:
        return None
    have = Counter()
    for _, r in df.iterrows():
        have[(r.method, r.dataset, int(r["rank"]), round(float(r.sparsity), 6),
              int(r.seed))] += 1
    return sorted((k, n) for k, n in (exp - have).items())


def problem_trials(df):
    """Trials not complete, or complete without a finite quality value."""
    out = []
    if df.empty:
        return out
    good = set(usable(df).id)
    for _, r in df.iterrows():
        if r.id in good:
            continue
        why = r.error
        if r.status == "diverged" and r.diverged_step >= 0:
            why = (why + "; " if why else "") + f"diverged at step {r.diverged_step}"
        if r.status == "complete":
            why = "complete but no quality metric"
        out.append((r.id, r.status, r.method, r.dataset, r["rank"], r.sparsity, r.seed,
                    why))
    return out


# ------------------------------------------------------------------------------ output

def md_table(header, rows, bold=None):
    def cell(t, b):
        t = str(t).replace("|", "\\|")
        return f"**{t}**" if b else t
    bold = bold or [[False] * len(header)] * len(rows)
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    for r, b in zip(rows, bold):
        lines.append("| " + " | ".join(cell(t, x) for t, x in zip(r, b)) + " |")
    return "\n".join(lines)


def html_table(header, rows, bold=None):
    bold = bold or [[False] * len(header)] * len(rows)
    out = ["<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header)
           + "</tr>"]
    for r, b in zip(rows, bold):
        out.append("<tr>" + "".join(
            f"<td>{'<b>' if x else ''}{html.escape(str(t))}{'</b>' if x else ''}</td>"
            for t, x in zip(r, b)) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def render(blocks):
    """Markdown and HTML of a list of blocks: ("h1"|"h2"|"p", text),
    ("table", header, rows, bold), ("img", file, caption), ("ul", items)."""
    md, ht = [], []
    for b in blocks:
        kind = b[0]
        if kind in ("h1", "h2", "h3"):
            md.append("#" * int(kind[1]) + " " + b[1])
            ht.append(f"<{kind}>{html.escape(b[1])}</{kind}>")
        elif kind == "p":
            md.append(b[1])
            ht.append(f"<p>{html.escape(b[1])}</p>")
        elif kind == "table":
            md.append(md_table(*b[1:]))
            ht.append(html_table(*b[1:]))
        elif kind == "img":
            md.append(f"![{b[2]}]({b[1]})")
            ht.append(f'<figure><img src="{html.escape(b[1])}" alt="{html.escape(b[2])}">'
                      f"<figcaption>{html.escape(b[2])}</figcaption></figure>")
        elif kind == "ul":
            md.append("\n".join(f"- {i}" for i in b[1]))
            ht.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in b[1])
                      + "</ul>")
        elif kind == "pre":
            md.append("```\n" + b[1].rstrip() + "\n```")
            ht.append(f"<pre>{html.escape(b[1])}</pre>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
             "table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}"
             "img{max-width:100%}pre{background:#f4f4f4;padding:1em;overflow:auto}")
    page = ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>peft-sweep "
            f"report</title><style>{style}</style></head><body>\n"
            + "\n".join(ht) + "\n</body></html>\n")
    return "\n\n".join(md) + "\n", page


EVAL_METRICS = ("accuracy", "f1", "perplexity", "eval_loss")


def use_best_evaluation(df):
    """The quality columns replaced by those of each trial's best evaluation (best_accuracy,
    …), where the file has them (files before they were recorded keep the last ones)."""
    df = df.copy()
    for m in EVAL_METRICS:
        if "best_" + m in df:
            df[m] = df["best_" + m].where(df["best_" + m].notna(), df.get(m))
    return df


def build_report(path, outdir, events=None, metric="last", reference=None):
    """events: the event log to read (default: RESULTS.h5.events.jsonl when it exists;
    False: none). metric: "last" (the last evaluation of each trial) or "best" (its best).
    reference: a CSV of bench/hf_reference.py to set beside the results."""
    root, df, curves, staging = load(path)
    if metric == "best":
        df = use_best_evaluation(df)
    if events is None:
        events = events_path(path) if os.path.isfile(events_path(path)) else False
    os.makedirs(outdir, exist_ok=True)
    name = root.get("sweep_name", os.path.basename(path))
    n_ok = len(usable(df))
    blocks = [("h1", f"peft-sweep report: {name}"),
              ("ul", [f"results file: {os.path.abspath(path)}",
                      f"peft-sweep version: {root.get('peft_sweep_version')}",
                      f"created: {root.get('created', '?')}"
                      + (f", resumed: {root['resumed']}" if "resumed" in root else ""),
                      f"world size: {root.get('world_size', '?')}",
                      f"trials: {len(df)} in the file, {n_ok} complete with a result",
                      "quality: " + ("the best evaluation of each trial (best_accuracy, "
                                     "best_perplexity; --metric best)" if metric == "best" else
                                     "the last evaluation of each trial (--metric best: its "
                                     "best)")])]

    figs = []

    def add_fig(fn, fname, caption, *args):
        p = fn(*args, os.path.join(outdir, fname))
        if p:
            figs.append(fname)
            blocks.append(("img", fname, caption))
        return p

    # tables
    blocks.append(("h2", "Summary per data set"))
    blocks.append(("p", "Mean ± std over seeds (std only where there are several seeds) of "
                        "the complete trials; the best value of each column is in bold "
                        "(none where all rows tie). "
                        f"Accuracy, F1 and perplexity are of the {metric} evaluation of each trial, "
                        "on the evaluation set; perplexity is lower-is-"
                        "better; latency is one batch-1 forward pass."))
    for ds in sorted(usable(df).dataset.unique()) if n_ok else []:
        blocks.append(("h3", dataset_label(ds) + f" ({ds})"))
        blocks.append(("table",) + summary_table(df, ds))

    sparse = sparsity_cost_table(df) if n_ok else None
    if sparse:
        blocks.append(("h2", "What Sparse LoRA's sparsity saves"))
        blocks.append(("p", "Each Sparse LoRA group against the LoRA trials of the same data set "
                            "and rank, as Sparse LoRA's mean over LoRA's (< 1: cheaper; within "
                            f"±{SAME_BAND:.0%} counts as the same). Pruned entries are zeros in "
                            "dense tensors: unstructured pruning leaves the step, the unmerged "
                            "forward and the optimizer state their dense shapes, and the PEFT "
                            "adapter file stores the zeros; only an adapter stored sparsely (a "
                            "bitmask plus the nonzero fp32 values) is smaller. Structured pruning "
                            "(whole rank channels) takes the dead channels out of the unmerged "
                            "forward and backward, which pays at large ranks; the parameters, "
                            "optimizer state and PEFT file keep rank r."))
        blocks.append(("table",) + sparse)

    if reference:
        blocks += reference_blocks(df, reference)

    blocks.append(("h2", "Figures"))
    add_fig(fig_quality_vs_params, "quality_vs_params.png",
            "Quality versus trainable parameters, Pareto front dashed", df)
    add_fig(fig_quality_vs_rank, "quality_vs_rank.png",
            "Quality versus adapter rank (mean ± std over seeds)", df)
    if not add_fig(fig_quality_vs_sparsity, "quality_vs_sparsity.png",
                   "Sparse LoRA: quality versus achieved sparsity", df):
        blocks.append(("p", "No complete Sparse LoRA trial: no sparsity figure."))
    add_fig(fig_cost, "cost.png",
            "Peak memory, training time and inference latency per method", df)
    for ds in sorted(usable(df).dataset.unique()) if n_ok else []:
        add_fig(fig_curves, f"curves_{ds}.png",
                f"Training loss and evaluation of the best trial per method, "
                f"{dataset_label(ds)}", df, curves, ds)

    # running trials, from the event log
    if events:
        unfinished = unfinished_trials(load_events(events), df)
        blocks.append(("h2", "Running trials"))
        if unfinished:
            blocks.append(("p", f"From the event log {events}: trials started and not "
                                "(yet) in the results file."))
            blocks.append(("table", ["id", "state", "group", "step", "loss", "trial"],
                           [[tid, st, str(t["group"]),
                             f"{t['step'][-1]}/{t['total_steps']}" if t["step"] else "0",
                             f"{t['loss'][-1]:.4f}" if t["loss"] else "—", t["label"]]
                            for tid, st, t in unfinished], None))
            add_fig(fig_running_curves, "running_curves.png",
                    "Training loss of the running trials (event log)", unfinished)
        else:
            blocks.append(("p", f"No running trial (event log {events})."))

    # problems
    blocks.append(("h2", "Failed, diverged and missing trials"))
    probs = problem_trials(df)
    if probs:
        blocks.append(("table", ["id", "status", "method", "dataset", "rank", "sparsity",
                                 "seed", "error"],
                       [[i, s, m, d, str(r), f"{sp:g}", str(se), e or "—"]
                        for i, s, m, d, r, sp, se, e in probs], None))
    else:
        blocks.append(("p", "No failed, diverged or interrupted trial."))
    miss = missing_trials(root, df)
    if miss is None:
        blocks.append(("p", "Missing trials: unknown (the sweep file could not be read)."))
    elif miss:
        blocks.append(("p", f"{sum(n for _, n in miss)} trial(s) of the sweep file are "
                            "not in the results file:"))
        blocks.append(("table", ["method", "dataset", "rank", "sparsity", "seed", "count"],
                       [[m, d, str(r), f"{s:g}", str(se), str(n)]
                        for (m, d, r, s, se), n in miss], None))
    else:
        blocks.append(("p", "No missing trial: every trial of the sweep file is in the "
                            "results file."))
    if staging:
        blocks.append(("p", "Trials whose write did not finish (left in /staging, rerun "
                            "by --resume): " + ", ".join(staging)))

    if root.get("sweep_toml"):
        blocks.append(("h2", "Sweep file"))
        blocks.append(("pre", root["sweep_toml"]))

    md, page = render(blocks)
    with open(os.path.join(outdir, "report.md"), "w") as f:
        f.write(md)
    with open(os.path.join(outdir, "report.html"), "w") as f:
        f.write(page)
    return figs, probs, miss


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", help="results file written by peft-sweep (HDF5)")
    ap.add_argument("-o", "--output", default="report",
                    help="output folder (default: report/)")
    ap.add_argument("--events", default=None,
                    help="the sweep's event log, for the curves of running trials "
                         "(default: RESULTS.events.jsonl when it exists)")
    ap.add_argument("--no-events", action="store_true", help="ignore the event log")
    ap.add_argument("--metric", choices=("last", "best"), default="last",
                    help="quality of each trial: its last evaluation (default) or its best "
                         "(the metrics best_accuracy, best_perplexity, …)")
    ap.add_argument("--reference", default=None, metavar="CSV",
                    help="the CSV of bench/hf_reference.py for the same sweep: adds a table "
                         "per data set setting peft-sweep's results beside transformers + "
                         "PEFT's (quality, difference against the goal, the floor, training "
                         "time, peak memory)")
    args = ap.parse_args(argv)
    if args.events and not os.path.isfile(args.events):
        print(f"error: {args.events}: no such event log", file=sys.stderr)
        return 2
    try:
        figs, probs, miss = build_report(args.results, args.output,
                                         False if args.no_events else args.events, args.metric,
                                         args.reference)
    except NotResultsFile as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = os.path.join(args.output, "report.md")
    note = f", {len(probs)} failed/diverged" if probs else ""
    if miss:
        note += f", {sum(n for _, n in miss)} missing"
    print(f"wrote {out} (+ report.html) and {len(figs)} figures{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
