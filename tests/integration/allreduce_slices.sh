#!/usr/bin/env bash
# The MPI all-reduce works in bounded slices: a 2.5-slice buffer sums correctly over 2 ranks
# (peft-bench allreduce checks it and fails otherwise), and the benchmark prints its table.
source "$(dirname "$0")/common.sh"
mpi 2 "$BIN/peft-bench" allreduce --quick > log 2>&1 || { cat log; fail "peft-bench allreduce failed"; }
cat log
grep -q "sums checked over 2621443 floats" log || fail "no sum check in the output"
grep -q "tensor/flat" log || fail "no figures in the output"
echo "allreduce_slices: ok"
