#!/usr/bin/env bash
# The Slurm test: start a real single-node Slurm cluster (munge + slurmctld + slurmd from
# Debian's packages, no systemd), run the cluster/ scripts through sbatch and check results:
#   A. cluster/sweep.sbatch, 1 node x 2 tasks under mpirun (PEFT_SWEEP_LAUNCHER=mpirun)
#   B. cluster/sweep.sbatch, 1 task, launcher auto (srun --mpi=pmix when Slurm has pmix),
#      preempted: USR1 to the batch shell after the first trial -> forwarded to the ranks ->
#      driver commits and stops -> the job requeues itself -> the restart resumes
#   C. cluster/submit-array.sh: 2 array tasks (--shard i/2) + merge job (afterok)
#   D. plain scancel (TERM to every process of the job, KILL KillWait=10 s later) of a
#      2-task mpirun sweep after its first trial: the ranks stop gracefully (they fold their
#      part files into the results file), committed trials are kept, no self-requeue;
#      a resubmit resumes and the committed trials' metrics are unchanged
# then stops every daemon it started.  Usage: test_slurm.sh [BIN_DIR]  (default build/bin)
# Exit 0: passed, 1: failed, 77: skipped (not root, no packages, daemons would not start).
# Needs root.  Installs slurm-wlm slurmctld slurmd slurm-client munge with apt-get if missing.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN_DIR=$(cd "${1:-$REPO/build/bin}" 2>/dev/null && pwd) || BIN_DIR=${1:-}
BIN=$BIN_DIR/peft-sweep
PY=/usr/bin/python3                    # Debian's python3, which has h5py
SMOKE=$REPO/sweeps/smoke.toml
JOB_TIMEOUT=${SLURM_TEST_JOB_TIMEOUT:-300}

T0=$(date +%s)
log()  { echo "[$(date +%T) +$(( $(date +%s) - T0 ))s] $*"; }
skip() { echo "SKIP: $*"; exit 77; }
FAILED=0
fail() { echo "FAIL: $*"; FAILED=1; dump_logs; exit 1; }

[ -x "$BIN" ] || { echo "FAIL: driver $BIN not found (give the bin dir as \$1)"; exit 1; }
[ -r "$SMOKE" ] || { echo "FAIL: $SMOKE missing"; exit 1; }
[ "$(id -u)" -eq 0 ] || skip "the Slurm test needs root (it starts munged, slurmctld and slurmd)"
"$PY" -c 'import h5py' 2>/dev/null || skip "$PY has no h5py (apt-get install python3-h5py)"
command -v timeout >/dev/null || skip "no timeout(1)"

# ---------------------------------------------------------------- packages
need_pkgs() { for c in munged munge unmunge slurmctld slurmd sbatch squeue scontrol scancel sinfo srun; do
                command -v "$c" >/dev/null || return 0; done; return 1; }
if need_pkgs; then
  command -v apt-get >/dev/null || skip "Slurm is not installed and there is no apt-get"
  log "installing munge and Slurm from Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  if ! { timeout 300 apt-get update -qq && timeout 600 apt-get install -y -qq --no-install-recommends \
           munge slurm-wlm slurmctld slurmd slurm-client; } >/tmp/peft-slurm-apt.$$.log 2>&1; then
    tail -n 20 /tmp/peft-slurm-apt.$$.log; rm -f /tmp/peft-slurm-apt.$$.log
    skip "could not install munge/Slurm packages"
  fi
  rm -f /tmp/peft-slurm-apt.$$.log
  need_pkgs && skip "Slurm commands still missing after installing the packages"
fi

# ---------------------------------------------------------------- state and clean-up
BASE=$(mktemp -d /tmp/peft-slurm.XXXXXX)
mkdir -p "$BASE"/{etc,log,jobs,state/ctld,state/d,state/pmix}
export SLURM_CONF=$BASE/etc/slurm.conf
unset SLURM_JOB_ID SLURM_JOBID SBATCH_PARTITION SBATCH_ACCOUNT SLURM_ACCOUNT   # not inside a job
MUNGE_PID="" CTLD_PID="" SLURMD_PID=""
baseline() { pgrep -x "$1" | sort | tr '\n' ' '; }
new_pids() {    # live (not zombie) processes named $1 that were not there at the start ($2)
  local p
  for p in $(pgrep -x "$1"); do
    case " $2 " in *" $p "*) continue ;; esac
    case $(ps -o stat= -p "$p" 2>/dev/null) in Z*|"") continue ;; esac
    printf ' %s' "$p"
  done
}
BASE_CTLD=$(baseline slurmctld) BASE_SLURMD=$(baseline slurmd) BASE_STEPD=$(baseline slurmstepd)

dump_logs() {
  echo "----- logs ($BASE)"
  local f
  for f in "$BASE"/log/*.log "$BASE"/jobs/*.out; do
    [ -s "$f" ] || continue; echo "----- $f"; tail -n 40 "$f"
  done
  squeue 2>/dev/null; scontrol -o show job 2>/dev/null | head -20
}

stop_cluster() {
  local p
  if [ -n "$CTLD_PID" ] && kill -0 "$CTLD_PID" 2>/dev/null; then
    # scontrol shutdown leaves running steps (slurmstepd) alive: cancel the jobs first
    timeout 10 scancel --user=root 2>/dev/null
    for _ in $(seq 50); do [ -z "$(timeout 5 squeue -h 2>/dev/null)" ] && break; sleep 0.2; done
    timeout 10 scontrol shutdown >/dev/null 2>&1
  fi
  for p in $CTLD_PID $SLURMD_PID; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$p" 2>/dev/null && { echo "killing slurm daemon $p"; kill -9 "$p"; }
  done
  # slurmstepd processes of our jobs (their parent is gone; they run our driver)
  for p in $(new_pids slurmstepd "$BASE_STEPD"); do kill -9 "$p" 2>/dev/null; done
  if [ -n "$MUNGE_PID" ]; then
    kill "$MUNGE_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$MUNGE_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$MUNGE_PID" 2>/dev/null && kill -9 "$MUNGE_PID"
  fi
}

leftovers() {   # daemons we started that are still alive
  local p out=""
  for p in $MUNGE_PID $CTLD_PID $SLURMD_PID; do kill -0 "$p" 2>/dev/null && out="$out $p"; done
  out="$out$(new_pids slurmctld "$BASE_CTLD")$(new_pids slurmd "$BASE_SLURMD")$(new_pids slurmstepd "$BASE_STEPD")"
  echo "$out"
}

on_exit() {
  local rc=$?
  trap - EXIT INT TERM
  log "stopping the cluster"
  stop_cluster
  local left; left=$(leftovers)
  if [ -n "$left" ]; then
    echo "FAIL: daemons left behind:$left"; ps -o pid,ppid,cmd -p "$(echo "$left" | grep -o '[0-9]*' | tr '\n' ',' | sed 's/,$//')" 2>/dev/null
    rc=1
  else
    log "no daemon left behind"
  fi
  if [ "$rc" -eq 0 ] || [ "$rc" -eq 77 ]; then rm -rf "$BASE"; else echo "state kept in $BASE"; fi
  exit "$rc"
}
trap on_exit EXIT
trap 'echo "interrupted"; exit 1' INT TERM

# ---------------------------------------------------------------- munge
munge_ok() { timeout 5 munge -n 2>/dev/null | timeout 5 unmunge 2>/dev/null | grep -q 'STATUS: *Success'; }
if munge_ok; then
  log "using the munged already running"
else
  [ -s /etc/munge/munge.key ] || runuser -u munge -- mungekey -c 2>/dev/null \
    || { [ -x /usr/sbin/create-munge-key ] && /usr/sbin/create-munge-key -f >/dev/null 2>&1; }
  [ -s /etc/munge/munge.key ] || skip "no munge key (/etc/munge/munge.key) and mungekey failed"
  chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
  install -d -o munge -g munge -m 0755 /run/munge
  rm -f /run/munge/munged.pid
  runuser -u munge -- /usr/sbin/munged >"$BASE/log/munged.start.log" 2>&1 || true
  for _ in $(seq 50); do munge_ok && break; sleep 0.1; done
  MUNGE_PID=$(cat /run/munge/munged.pid 2>/dev/null)
  munge_ok || { cat "$BASE/log/munged.start.log"; skip "munged did not start"; }
  log "started munged (pid $MUNGE_PID)"
fi

# ---------------------------------------------------------------- slurm.conf
free_port() {   # a free TCP port pair p, p+1 (so a second cluster on the machine cannot clash)
  local p
  for _ in $(seq 50); do
    p=$(( 20000 + RANDOM % 20000 ))
    ss -ltn 2>/dev/null | grep -qE ":($p|$((p+1)))\b" || { echo "$p"; return; }
  done
  echo 26817
}
PORT=$(free_port)
HW=$(slurmd -C 2>/dev/null | head -1 | sed 's/^NodeName=[^ ]* //')
[ -n "$HW" ] || skip "slurmd -C failed"
NCPU=$(echo "$HW" | sed -n 's/.*CPUs=\([0-9]*\).*/\1/p')
# 2 fake "GPUs": the scripts ask for --gpus-per-task=1 as on a real site; Slurm sets
# CUDA_VISIBLE_DEVICES per task, the devices are /dev/null and the driver runs on the CPU
cat > "$SLURM_CONF" <<CONF
ClusterName=peftci
SlurmctldHost=localhost
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# a requeued job waits cred_expire seconds (default 120) before it may start again
AuthInfo=cred_expire=10
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
ReturnToService=2
MinJobAge=600
KillWait=10
StateSaveLocation=$BASE/state/ctld
SlurmdSpoolDir=$BASE/state/d
SlurmctldPidFile=$BASE/state/slurmctld.pid
SlurmdPidFile=$BASE/state/slurmd.pid
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$BASE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=localhost NodeAddr=127.0.0.1 $HW Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
# slurmd drops file-less GPUs and wants device files: two links to /dev/null
mkdir -p "$BASE/dev"; ln -sf /dev/null "$BASE/dev/nvidia0"; ln -sf /dev/null "$BASE/dev/nvidia1"
echo "NodeName=localhost Name=gpu File=$BASE/dev/nvidia[0-1]" > "$BASE/etc/gres.conf"
# mpi/pmix puts its per-step directories under /tmp by default; keep them in $BASE
echo "PMIxCliTmpDirBase=$BASE/state/pmix" > "$BASE/etc/mpi.conf"

# ---------------------------------------------------------------- daemons
log "starting slurmctld and slurmd (ports $PORT, $((PORT + 1)); state in $BASE)"
timeout 30 slurmctld -c >"$BASE/log/slurmctld.start.log" 2>&1 || { cat "$BASE/log/slurmctld.start.log"; skip "slurmctld did not start"; }
for _ in $(seq 50); do [ -s "$BASE/state/slurmctld.pid" ] && break; sleep 0.1; done
CTLD_PID=$(cat "$BASE/state/slurmctld.pid" 2>/dev/null)
timeout 30 slurmd -N localhost >"$BASE/log/slurmd.start.log" 2>&1 || { cat "$BASE/log/slurmd.start.log"; tail -n 20 "$BASE"/log/*.log; skip "slurmd did not start"; }
for _ in $(seq 50); do [ -s "$BASE/state/slurmd.pid" ] && break; sleep 0.1; done
SLURMD_PID=$(cat "$BASE/state/slurmd.pid" 2>/dev/null)
for _ in $(seq 150); do
  timeout 5 sinfo -h -n localhost -o %T 2>/dev/null | grep -qx idle && break; sleep 0.2
done
if ! timeout 5 sinfo -h -n localhost -o %T 2>/dev/null | grep -qx idle; then
  tail -n 30 "$BASE"/log/*.log; skip "the Slurm node did not come up idle"
fi
log "cluster up: $(sinfo -h -o '%P %D %T %C' | head -1) (slurmctld $CTLD_PID, slurmd $SLURMD_PID)"

# ---------------------------------------------------------------- helpers
job_field() { timeout 10 scontrol -o show job "$1" 2>/dev/null | grep -o " $2=[^ ]*" | head -1 | cut -d= -f2; }

# wait until job (or whole array) $1 has left the pending/running states; fail on timeout;
# return the largest exit code (1 if a task FAILED/CANCELLED/TIMEOUT without one)
wait_job() {
  local id=$1 t=${2:-$JOB_TIMEOUT} states="" end=$(( $(date +%s) + ${2:-$JOB_TIMEOUT} ))
  while [ "$(date +%s)" -lt "$end" ]; do
    states=$(timeout 10 scontrol -o show job "$id" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | sort -u)
    [ -n "$states" ] && ! echo "$states" | grep -qE 'PENDING|RUNNING|CONFIGURING|COMPLETING|SUSPENDED|REQUEUED|RESIZING' && break
    sleep 0.5
  done
  if echo "$states" | grep -qE 'PENDING|RUNNING|CONFIGURING|COMPLETING|SUSPENDED|REQUEUED' || [ -z "$states" ]; then
    echo "job $id did not finish within ${t}s: $(echo $states)"; return 124
  fi
  local rc=0 c
  for c in $(timeout 10 scontrol -o show job "$id" | grep -o ' ExitCode=[0-9]*' | cut -d= -f2); do
    [ "$c" -gt "$rc" ] && rc=$c
  done
  if [ $rc -eq 0 ] && echo "$states" | grep -qvE 'JobState=COMPLETED'; then rc=1; fi
  return $rc
}

# check_results FILE: exactly the smoke sweep's 3 trials, all complete
check_results() {
  "$PY" - "$1" <<'PYEOF'
import sys, h5py
path = sys.argv[1]
with h5py.File(path, "r") as f:
    assert f.attrs.get("sweep_name") in ("smoke", b"smoke"), f"sweep_name {f.attrs.get('sweep_name')!r}"
    trials = f["trials"]
    st = {k: (g.attrs["status"], g.attrs["method.name"]) for k, g in trials.items()}
    st = {k: tuple(v.decode() if isinstance(v, bytes) else str(v) for v in t) for k, t in st.items()}
    print(f"{path}: {len(st)} trials: " + ", ".join(f"{m}={s}" for s, m in sorted(st.values(), key=lambda t: t[1])))
    assert len(st) == 3, f"expected 3 trials, found {len(st)}"
    assert all(s == "complete" for s, _ in st.values()), "not every trial is complete"
    assert sorted(m for _, m in st.values()) == ["head", "lora", "sparse_lora"], "wrong methods"
    for k, g in trials.items():
        assert "accuracy" in g["metrics"].attrs, f"trial {k} has no accuracy"
PYEOF
}

cd "$BASE/jobs" || exit 1
export PEFT_SWEEP_BIN=$BIN SWEEP=$SMOKE
COMMON=(--nodes=1 --cpus-per-task=1 --time=10 --chdir="$BASE/jobs")

# ---------------------------------------------------------------- A: multi-task sweep
log "A: cluster/sweep.sbatch, 1 node x 2 tasks, mpirun"
ID=$(OUTPUT=$BASE/jobs/a.h5 PEFT_SWEEP_LAUNCHER=mpirun timeout 30 sbatch --parsable "${COMMON[@]}" --ntasks-per-node=2 \
       -o "$BASE/jobs/a-%j.out" "$REPO/cluster/sweep.sbatch") || fail "sbatch failed"
wait_job "$ID"; RC=$?
cat "$BASE/jobs/a-$ID.out"
[ $RC -eq 0 ] || fail "A: job $ID ended with $RC ($(job_field "$ID" JobState))"
check_results "$BASE/jobs/a.h5" || fail "A: bad results file"
log "A: passed"

# ---------------------------------------------------------------- B: preemption
log "B: cluster/sweep.sbatch, launcher auto, USR1 after the first trial, requeue, resume"
# the smoke sweep with longer trials, so that the signal lands while trials remain: 600
# steps is ~2.5 s a trial with LibTorch 2.x (MKL, AVX-512), where 150 steps (0.6 s) let D's two
# groups finish all three trials before the TERM of a scancel reached them
sed 's/^max_steps *=.*/max_steps = 600/' "$SMOKE" > "$BASE/jobs/smoke-long.toml"
ID=$(OUTPUT=$BASE/jobs/b.h5 SWEEP=$BASE/jobs/smoke-long.toml timeout 30 sbatch --parsable "${COMMON[@]}" \
       --ntasks-per-node=1 -o "$BASE/jobs/b-%j.out" "$REPO/cluster/sweep.sbatch") || fail "sbatch failed"
end=$(( $(date +%s) + JOB_TIMEOUT ))
until grep -q ' acc [0-9]' "$BASE/jobs/b-$ID.out" 2>/dev/null; do
  [ "$(date +%s)" -lt "$end" ] || fail "B: no trial finished within ${JOB_TIMEOUT}s"
  case $(job_field "$ID" JobState) in PENDING|RUNNING|CONFIGURING) ;; *) fail "B: job ended before the signal";; esac
  sleep 0.3
done
timeout 10 scancel --signal=USR1 --batch "$ID" || fail "B: scancel --signal failed"
log "B: sent USR1 to the batch shell of job $ID"
# the job requeues itself, starts again and resumes: wait for the second start to finish
end=$(( $(date +%s) + JOB_TIMEOUT ))
until [ "$(job_field "$ID" Restarts)" -ge 1 ] 2>/dev/null; do
  [ "$(date +%s)" -lt "$end" ] || break
  [ "$(job_field "$ID" JobState)" = COMPLETED ] && break
  sleep 0.3
done
wait_job "$ID"; RC=$?
cat "$BASE/jobs/b-$ID.out"
[ $RC -eq 0 ] || fail "B: job $ID ended with $RC ($(job_field "$ID" JobState))"
[ "$(job_field "$ID" Restarts)" -ge 1 ] 2>/dev/null || fail "B: job $ID was not requeued"
grep -q 'resuming' "$BASE/jobs/b-$ID.out" || fail "B: the restart did not resume"
grep -q 'requeueing job' "$BASE/jobs/b-$ID.out" || fail "B: the batch script did not requeue the job itself"
LAUNCHED=$(grep -o 'task(s): [a-z]*' "$BASE/jobs/b-$ID.out" | head -1 | cut -d' ' -f2)
log "B: launched with $LAUNCHED"
check_results "$BASE/jobs/b.h5" || fail "B: bad results file"
log "B: passed"

# ---------------------------------------------------------------- C: job array + merge
log "C: cluster/submit-array.sh, 2 array tasks + merge (afterok)"
unset SWEEP
IDS=$(timeout 60 "$REPO/cluster/submit-array.sh" --parsable -n 2 -b "$BIN" "$SMOKE" "$BASE/jobs/c.h5" \
        "${COMMON[@]}" --ntasks=1 -o "$BASE/jobs/c-%A_%a.out") || fail "submit-array.sh failed"
read -r AID MID <<< "$IDS"
log "C: array job $AID, merge job $MID (dependency $(job_field "$MID" Dependency))"
wait_job "$AID"; RC=$?
cat "$BASE"/jobs/c-"${AID}"_*.out
[ $RC -eq 0 ] || fail "C: array job $AID ended with $RC"
wait_job "$MID"; RC=$?
cat "$BASE"/jobs/c-"${MID}"*.out 2>/dev/null
[ $RC -eq 0 ] || fail "C: merge job $MID ended with $RC ($(job_field "$MID" JobState))"
for i in 0 1; do
  [ -s "$BASE/jobs/c.parts/part-$i.h5" ] || fail "C: part-$i.h5 missing"
  grep -q -- "--shard $i/2" "$BASE"/jobs/c-"${AID}"_*.out || fail "C: no array task ran shard $i/2"
done
check_results "$BASE/jobs/c.h5" || fail "C: bad merged results file"
log "C: passed"

# ---------------------------------------------------------------- D: TERM (scancel)
log "D: cluster/sweep.sbatch, 2 tasks, mpirun, plain scancel (TERM) after the first trial, resubmit"
export SWEEP=$BASE/jobs/smoke-long.toml
ID=$(OUTPUT=$BASE/jobs/d.h5 PEFT_SWEEP_LAUNCHER=mpirun PEFT_SWEEP_STOP_GRACE=6 timeout 30 sbatch --parsable "${COMMON[@]}" \
       --ntasks-per-node=2 -o "$BASE/jobs/d-%j.out" "$REPO/cluster/sweep.sbatch") || fail "sbatch failed"
end=$(( $(date +%s) + JOB_TIMEOUT ))
until grep -q ' acc [0-9]' "$BASE/jobs/d-$ID.out" 2>/dev/null; do
  [ "$(date +%s)" -lt "$end" ] || fail "D: no trial finished within ${JOB_TIMEOUT}s"
  case $(job_field "$ID" JobState) in PENDING|RUNNING|CONFIGURING) ;; *) fail "D: job ended before the signal";; esac
  sleep 0.3
done
TS=$(date +%s)
timeout 10 scancel "$ID" || fail "D: scancel failed"
log "D: cancelled job $ID (TERM to the batch shell, mpirun and the ranks)"
wait_job "$ID" 60; RC=$?
STOP_S=$(( $(date +%s) - TS ))
cat "$BASE/jobs/d-$ID.out"
[ $RC -ne 124 ] || fail "D: job $ID still running 60 s after scancel"
[ "$(job_field "$ID" JobState)" = CANCELLED ] || fail "D: job $ID is $(job_field "$ID" JobState), expected CANCELLED"
grep -q 'got SIGTERM' "$BASE/jobs/d-$ID.out" || fail "D: the batch shell did not see the TERM"
# The graceful end folds the part files into the results file (a killed run leaves them for
# the next --resume). mpirun stops relaying the ranks' output once TERM reaches it, so the
# driver's "interrupted: rerun with --resume" line may not make it into the job log.
ls "$BASE"/jobs/d.h5.part-g*.h5 >/dev/null 2>&1 && fail "D: part files left: the ranks were killed before their graceful end"
grep -q 'interrupted: rerun with --resume' "$BASE/jobs/d-$ID.out" && log "D: the driver's 'interrupted' line is in the job log"
grep -q 'requeueing' "$BASE/jobs/d-$ID.out" && fail "D: a cancelled job requeued itself"
committed() { "$PY" - "$1" <<'PYEOF'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    for k in sorted(f["trials"]):
        g = f["trials"][k]
        s = g.attrs["status"]; s = s.decode() if isinstance(s, bytes) else str(s)
        if s == "complete":
            print(k, sorted((m, repr(float(v))) for m, v in g["metrics"].attrs.items()))
PYEOF
}
BEFORE=$(committed "$BASE/jobs/d.h5") || fail "D: no readable results file after the cancel"
N_BEFORE=$(printf '%s\n' "$BEFORE" | grep -c .)
[ "$N_BEFORE" -ge 1 ] && [ "$N_BEFORE" -lt 3 ] || fail "D: $N_BEFORE committed trials after the cancel, expected 1 or 2"
log "D: stopped ${STOP_S}s after scancel with $N_BEFORE committed trial(s); resubmitting"
ID2=$(OUTPUT=$BASE/jobs/d.h5 PEFT_SWEEP_LAUNCHER=mpirun timeout 30 sbatch --parsable "${COMMON[@]}" \
       --ntasks-per-node=2 -o "$BASE/jobs/d-%j.out" "$REPO/cluster/sweep.sbatch") || fail "sbatch failed"
wait_job "$ID2"; RC=$?
cat "$BASE/jobs/d-$ID2.out"
[ $RC -eq 0 ] || fail "D: resubmitted job $ID2 ended with $RC"
grep -q 'resuming' "$BASE/jobs/d-$ID2.out" || fail "D: the resubmit did not resume"
check_results "$BASE/jobs/d.h5" || fail "D: bad results file"
AFTER=$(committed "$BASE/jobs/d.h5")
while read -r line; do
  printf '%s\n' "$AFTER" | grep -qxF "$line" || fail "D: committed trial changed by the resume: $line"
done <<< "$BEFORE"
log "D: passed (TERM stop ${STOP_S}s, $N_BEFORE trial(s) kept bit for bit, resume completed)"

log "all Slurm tests passed in $(( $(date +%s) - T0 ))s"
