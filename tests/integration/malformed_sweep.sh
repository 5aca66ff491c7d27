#!/usr/bin/env bash
# A broken sweep fails on every rank with one message naming key and line:column; no file.
source "$(dirname "$0")/common.sh"
write_sweep bad.toml 1 5
sed -i "s/^lr = 1e-3/lr = -1/; s/^batch_size = 16/batch_sise = 16/" bad.toml
set +e
mpi 3 "$BIN/peft-sweep" bad.toml > out.log 2>&1; rc=$?
set -e
cat out.log
[[ $rc -ne 0 ]] || fail "exit code 0 on a malformed sweep"
[[ $(grep -c "train.lr" out.log) == 1 ]] || fail "the message must appear exactly once"
grep -q "bad.toml:[0-9]*:[0-9]*" out.log || fail "no line:column"
grep -q "did you mean" out.log || fail "no did-you-mean for batch_sise"
[[ ! -e out.h5 ]] || fail "a results file was created"
echo "malformed_sweep: ok"
