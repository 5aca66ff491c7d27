#!/bin/bash
# Submit a sweep as a Slurm job array plus a merge job that runs when every array task
# has succeeded (--dependency=afterok).  Run from the repository root:
#     cluster/submit-array.sh [-n N] [-b BIN] [--parsable] SWEEP.toml OUTPUT.h5 [sbatch options...]
#   -n N         number of array tasks (shards); default: the number of trials, at most 8
#   -b BIN       driver binary (default $PEFT_SWEEP_BIN or build/bin/peft-sweep)
#   --parsable   print "ARRAY_JOB_ID MERGE_JOB_ID" only
# The parts go to OUTPUT without .h5 plus .parts/part-<i>.h5; the merged file is OUTPUT.
# sbatch options after OUTPUT.h5 (partition, account, time, ...) apply to both jobs.
# Example: cluster/submit-array.sh -n 8 sweeps/full.toml results/full.h5 --partition=gpu
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
N="" PARSABLE=0
BIN=${PEFT_SWEEP_BIN:-build/bin/peft-sweep}
usage() { sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
  case $1 in
    -n) N=$2; shift 2 ;;
    -b) BIN=$2; shift 2 ;;
    --parsable) PARSABLE=1; shift ;;
    -h|--help) usage 0 ;;
    --) shift; break ;;
    -*) echo "submit-array.sh: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
[ $# -ge 2 ] || usage
SWEEP=$1 OUTPUT=$2; shift 2
[ -r "$SWEEP" ] || { echo "submit-array.sh: sweep file $SWEEP not readable" >&2; exit 2; }
[ -x "$BIN" ] || { echo "submit-array.sh: driver $BIN not executable (use -b or PEFT_SWEEP_BIN)" >&2; exit 2; }
command -v sbatch >/dev/null || { echo "submit-array.sh: sbatch not found" >&2; exit 2; }

if [ -z "$N" ]; then
  # "sweep NAME: T trials, ..." from the dry run
  # (a preview for one group of dp ranks: the count does not depend on the world size)
  DP=$("$BIN" "$SWEEP" --dump-config 2>/dev/null | sed -n 's/^dp *= *\([0-9][0-9]*\).*/\1/p' | head -1)
  T=$("$BIN" "$SWEEP" --dry-run --ranks "${DP:-1}" 2>/dev/null | sed -n 's/^sweep .*: \([0-9][0-9]*\) trials.*/\1/p' | head -1)
  [ -n "$T" ] || { echo "submit-array.sh: cannot count the trials of $SWEEP (give -n N)" >&2; exit 2; }
  N=$(( T < 8 ? T : 8 )); [ "$N" -ge 1 ] || N=1
fi
[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "submit-array.sh: -n must be a positive integer" >&2; exit 2; }

OUTDIR=${OUTPUT%.h5}.parts
mkdir -p "$OUTDIR" "$(dirname "$OUTPUT")"
export PEFT_SWEEP_BIN=$BIN SWEEP OUTDIR OUTPUT PEFT_SWEEP_PARTS=$N

ARRAY=$(sbatch --parsable --array=0-$((N - 1)) "$@" "$HERE/array.sbatch")
ARRAY=${ARRAY%%;*}                      # "id;cluster" on federated sites
MERGE=$(sbatch --parsable --dependency=afterok:"$ARRAY" --kill-on-invalid-dep=yes \
        "$@" "$HERE/merge.sbatch")
MERGE=${MERGE%%;*}
if [ "$PARSABLE" = 1 ]; then
  echo "$ARRAY $MERGE"
else
  echo "array job $ARRAY: $N shards of $SWEEP into $OUTDIR/part-<i>.h5"
  echo "merge job $MERGE (after all of $ARRAY succeed): $OUTPUT"
  echo "watch: squeue -j $ARRAY,$MERGE    cancel: scancel $ARRAY $MERGE"
fi
