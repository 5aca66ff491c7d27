#!/usr/bin/env bash
# Two hosts on this machine: network namespaces th-host-a / th-host-b joined by a veth pair
# (10.77.0.1/24, 10.77.0.2/24), each with its own host name. mpirun starts on host a and
# launches host b through tests/integration/two_hosts_rsh (no sshd); Open MPI talks TCP
# over the veth only. Checks:
#   1. dp=2 groups inside each host (--host a:2,b:2) and groups spanning both (--map-by node):
#      every rank's host, local rank and device as expected, metrics bitwise those of a
#      one-host run of the same sweep (same threads per rank: 2 ranks per host = 1 thread)
#   2. host b cut off (its veth down) after the first committed trial: the job ends within
#      CUT_TIMEOUT s with Open MPI's error naming the lost host; --resume on host a alone
#      completes the sweep and no committed trial changes.
# Exit 77 (skipped) where namespaces cannot be made.
source "$(dirname "$0")/common.sh"
skip() { echo "SKIP: $*"; exit 77; }
[[ $(id -u) -eq 0 ]] || skip "needs root to make network namespaces"
command -v ip >/dev/null || skip "no ip(8)"
command -v unshare >/dev/null || skip "no unshare(1)"
CUT_TIMEOUT=60
ID=$$
NS_A=peft-th$ID-a NS_B=peft-th$ID-b VA=pth${ID}a VB=pth${ID}b
export PEFT_TH_NS_A=$NS_A PEFT_TH_NS_B=$NS_B PEFT_TH_IP_A=10.77.0.1 PEFT_TH_IP_B=10.77.0.2
cleanup() { ip netns del "$NS_A" 2>/dev/null; ip netns del "$NS_B" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
ip netns add "$NS_A" 2>/dev/null || skip "ip netns add is not permitted here"
ip netns add "$NS_B" || skip "ip netns add is not permitted here"
ip link add "$VA" type veth peer name "$VB" 2>/dev/null || skip "cannot make a veth pair"
ip link set "$VA" netns "$NS_A" && ip link set "$VB" netns "$NS_B" || fail "moving the veth ends"
ip -n "$NS_A" addr add 10.77.0.1/24 dev "$VA" && ip -n "$NS_B" addr add 10.77.0.2/24 dev "$VB" || fail "addresses"
for ns in "$NS_A" "$NS_B"; do ip -n "$ns" link set lo up; done
ip -n "$NS_A" link set "$VA" up && ip -n "$NS_B" link set "$VB" up || fail "links up"
ip netns exec "$NS_A" unshare --uts true 2>/dev/null || skip "unshare --uts is not permitted here"

RSH=$SRC/tests/integration/two_hosts_rsh
NET=(--mca plm_rsh_agent "$RSH" --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24
     --mca oob_tcp_if_include 10.77.0.0/24
     # one-sided (the dynamic trial counter) over TCP: osc/rdma needs an RDMA btl
     --mca osc pt2pt
     # a lost host is noticed by TCP keepalive on the daemons' links: 5 s idle, 3 probes 2 s apart
     --mca oob_tcp_keepalive_time 5 --mca oob_tcp_keepalive_intvl 2 --mca oob_tcp_keepalive_probes 3
     -x PEFT_LOG_LEVEL=debug -x OMPI_MCA_btl_vader_single_copy_mechanism)
on_a() { ip netns exec "$NS_A" unshare --uts sh -c 'hostname th-host-a && exec "$@"' sh "$@"; }
two_hosts() { on_a mpirun --host 10.77.0.1:2,10.77.0.2:2 "${NET[@]}" "$@"; }

metrics() { /usr/bin/python3 - "$1" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    for k in sorted(f["trials"]):
        g = f["trials"][k]
        s = g.attrs["status"]; s = s.decode() if isinstance(s, bytes) else str(s)
        if s == "complete":
            print(k, sorted((m, float(v).hex()) for m, v in g["metrics"].attrs.items() if not any(w in m for w in ("inference_", "per_second", "seconds", "_ms", "peak"))))  # timings, memory peaks vary
PY
}
# host, local rank, device of each rank from the start-up line
placement() { grep -o 'rank [0-9]* on [^:]*: local rank [0-9]* of [0-9]*, group [0-9]* rank [0-9]*, device [a-z:0-9]*' "$1" | sort -u || true; }

write_sweep s.toml "1" 30 2
PEFT_LOG_LEVEL=debug mpi 4 "$BIN/peft-sweep" s.toml --output one.h5 > one.log 2>&1 || { tail -20 one.log; fail "one-host run"; }
metrics one.h5 > one.txt
[[ $(grep -c . one.txt) == 2 ]] || fail "one-host run: expected 2 complete trials"

# 1a. groups inside each host: ranks 0,1 on a, 2,3 on b
t0=$(date +%s)
two_hosts "$BIN/peft-sweep" s.toml --output in.h5 > in.log 2>&1 || { tail -30 in.log; fail "two-host run (groups in a host)"; }
echo "two hosts, groups in a host: $(( $(date +%s) - t0 ))s"
placement in.log
for r in 0 1; do placement in.log | grep -q "rank $r on th-host-a: local rank $r of 2, group 0 rank $r, device cpu" || fail "rank $r placement"; done
for r in 2 3; do placement in.log | grep -q "rank $r on th-host-b: local rank $((r-2)) of 2, group 1 rank $((r-2)), device cpu" || fail "rank $r placement"; done
metrics in.h5 | diff one.txt - || fail "groups in a host: metrics differ from the one-host run"

# 1b. groups spanning both hosts: --map-by node puts ranks 0,2 on a and 1,3 on b
t0=$(date +%s)
two_hosts --map-by node "$BIN/peft-sweep" s.toml --output span.h5 > span.log 2>&1 || { tail -30 span.log; fail "two-host run (spanning groups)"; }
echo "two hosts, groups spanning both: $(( $(date +%s) - t0 ))s"
placement span.log
placement span.log | grep -q "rank 0 on th-host-a: local rank 0 of 2, group 0 rank 0" || fail "rank 0 placement (span)"
placement span.log | grep -q "rank 1 on th-host-b: local rank 0 of 2, group 0 rank 1" || fail "rank 1 placement (span)"
placement span.log | grep -q "rank 2 on th-host-a: local rank 1 of 2, group 1 rank 0" || fail "rank 2 placement (span)"
placement span.log | grep -q "rank 3 on th-host-b: local rank 1 of 2, group 1 rank 1" || fail "rank 3 placement (span)"
metrics span.h5 | diff one.txt - || fail "spanning groups: metrics differ from the one-host run"

# 2. host b cut off after the first committed trial
write_sweep long.toml "1, 2, 3" 60 2
two_hosts "$BIN/peft-sweep" long.toml --output cut.h5 > cut.log 2>&1 &
pid=$!
for _ in $(seq 600); do grep -q '\] trial [0-9a-f]* (.*) acc' cut.log && break; kill -0 $pid 2>/dev/null || break; sleep 0.2; done
grep -q '\] trial [0-9a-f]* (.*) acc' cut.log || { kill $pid; tail -20 cut.log; fail "no trial committed before the cut"; }
ip -n "$NS_B" link set "$VB" down
t0=$(date +%s)
ended=0
for _ in $(seq $((CUT_TIMEOUT * 5))); do kill -0 $pid 2>/dev/null || { ended=1; break; }; sleep 0.2; done
took=$(( $(date +%s) - t0 ))
if [[ $ended == 0 ]]; then kill -9 $pid; tail -20 cut.log; fail "the job still ran ${CUT_TIMEOUT}s after host b was cut off"; fi
set +e; wait $pid; rc=$?; set -e
[[ $rc -ne 0 ]] || fail "exit code 0 after host b was cut off"
msg=$(grep -iE 'lost (communication|connection)|unreachable|10\.77\.0\.2|th-host-b' cut.log | grep -viE '\[info\]|\[debug\]' | head -5)
[[ -n $msg ]] || { tail -30 cut.log; fail "no error naming the lost host"; }
echo "cut off: the job ended ${took}s after the cut (limit ${CUT_TIMEOUT}s), rc $rc:"; echo "$msg"
# host b's ranks outlive the cut (their daemon cannot reach mpirun) and still hold their part
# file: end them, as a lost host is fenced before its files are taken over
for _ in $(seq 50); do
  left=$(ip netns pids "$NS_B"); [[ -z $left ]] && break
  kill -9 $left 2>/dev/null || true; sleep 0.2
done
[[ -z $(ip netns pids "$NS_B") ]] || fail "processes of host b survive kill -9"
# the committed trials: in the per-group part files (the job died before folding them)
ls cut.h5.part-g*.h5 >/dev/null 2>&1 || fail "no part file after the cut"
for p in cut.h5.part-g*.h5; do metrics "$p"; done | sort > before.txt
[[ $(grep -c . before.txt) -ge 1 ]] || fail "no committed trial in the part files"
on_a mpirun -np 2 --oversubscribe "$BIN/peft-sweep" long.toml --output cut.h5 --resume > resume.log 2>&1 \
  || { tail -20 resume.log; fail "--resume on host a failed"; }
[[ $(complete_count cut.h5) == 6 ]] || fail "expected 6 complete trials after the resume"
metrics cut.h5 > after.txt
while read -r line; do grep -qxF "$line" after.txt || fail "a committed trial changed: $line"; done < before.txt
echo "two_hosts: ok ($(grep -c . before.txt) trial(s) committed before the cut unchanged, resume on host a completed)"
