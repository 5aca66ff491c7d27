#!/usr/bin/env python3
"""Sum a Chrome trace of LibTorch's op profiler by op name: calls, total and self time.

    build/bin/peft-bench step --shape tiny --trainer-only --profile step.trace
    python3 bench/trace_summary.py step.trace [--steps N] [--top K]

Self time is an op's time less the time of the ops it called (nesting is taken from the
events' start and end on each thread). --steps divides the figures by the number of steps
the trace holds (peft-bench prints it), so they read per step.
"""
import argparse
import collections
import json
import sys


def summarise(events):
    """(name -> [calls, total_us, self_us]), wall-clock span in microseconds."""
    by_thread = collections.defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and "dur" in e:
            by_thread[e.get("tid")].append((float(e["ts"]), float(e["dur"]), e["name"]))
    sums = collections.defaultdict(lambda: [0, 0.0, 0.0])
    first, last = float("inf"), float("-inf")
    for spans in by_thread.values():
        # Parents first: by start, and the longer one first when two start together.
        spans.sort(key=lambda s: (s[0], -s[1]))
        stack = []  # [end, name, child_us]
        def close(entry):
            end, name, child = entry
            sums[name][2] += max(0.0, durations[id(entry)] - child)
        durations = {}
        for ts, dur, name in spans:
            first, last = min(first, ts), max(last, ts + dur)
            while stack and stack[-1][0] <= ts:
                close(stack.pop())
            if stack:
                stack[-1][2] += dur
            entry = [ts + dur, name, 0.0]
            durations[id(entry)] = dur
            stack.append(entry)
            sums[name][0] += 1
            sums[name][1] += dur
        while stack:
            close(stack.pop())
    return sums, (last - first if last > first else 0.0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trace", help="a Chrome trace written by peft-bench step --profile")
    ap.add_argument("--steps", type=int, default=1, help="steps in the trace: figures are per step (default 1: the whole trace)")
    ap.add_argument("--top", type=int, default=30, help="ops to list, by self time (default 30)")
    a = ap.parse_args(argv)
    if a.steps < 1 or a.top < 1:
        ap.error("--steps and --top must be at least 1")
    try:
        with open(a.trace) as f:
            events = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"trace_summary.py: {a.trace}: {e}")
    if isinstance(events, dict):
        events = events.get("traceEvents", [])
    sums, span = summarise(events)
    if not sums:
        sys.exit(f"trace_summary.py: {a.trace}: no complete ('X') events")
    n = a.steps
    calls = sum(v[0] for v in sums.values())
    self_total = sum(v[2] for v in sums.values())
    print(f"{a.trace}: {calls / n:.0f} op calls per step, {span / n / 1000:.2f} ms traced per step, "
          f"{self_total / n / 1000:.2f} ms of it inside ops (self time summed)")
    print(f"{'op':<44} {'calls':>7} {'total ms':>9} {'self ms':>8} {'self %':>7} {'us/call':>8}")
    for name, (c, tot, slf) in sorted(sums.items(), key=lambda kv: -kv[1][2])[: a.top]:
        print(f"{name[:44]:<44} {c / n:>7.1f} {tot / n / 1000:>9.3f} {slf / n / 1000:>8.3f} "
              f"{100 * slf / self_total:>6.1f}% {slf / c:>8.1f}")


if __name__ == "__main__":
    main()
