#!/usr/bin/env bash
# Runs the cross-process test suite (procsync-cli/tests/procs, release build) N times in a row
# with two CPU hogs running beside it, and reports how many runs failed (README.md, "Crash safety").
#
#   scripts/stress-suite.sh [N] [-- extra arguments for the test binary]
#
# N defaults to 25. HOGS (default 2) sets the number of busy-loop processes. The suite is built
# once, then its test binary is run directly, so that editing sources meanwhile changes nothing.
# The logs of failing runs are kept under $LOGDIR (default: a fresh directory under
# ${TMPDIR:-/tmp}); the exit status is 0 only when every run passed. The hogs are this script's
# own children and are killed by their process ids when it ends, however it ends.
set -euo pipefail

runs=${1:-25}
shift || true
if [[ "${1:-}" == "--" ]]; then shift; fi
case "$runs" in
  '' | *[!0-9]*) echo "usage: $0 [N] [-- test arguments]  (N: a number of runs, got '$runs')" >&2; exit 2 ;;
esac
hogs=${HOGS:-2}
cd "$(dirname "$0")/.."
logdir=${LOGDIR:-$(mktemp -d "${TMPDIR:-/tmp}/procsync-stress-suite.XXXXXX")}
mkdir -p "$logdir"

echo "building the cross-process suite (release)…"
bin=$(cargo test --release -p procsync-cli --test procs --no-run --message-format=json 2>/dev/null \
  | grep '"kind":\["test"\]' | grep '"name":"procs"' \
  | grep -o '"executable":"[^"]*"' | tail -1 | cut -d'"' -f4)
if [[ -z "$bin" || ! -x "$bin" ]]; then
  echo "could not build or find the test binary of procsync-cli/tests/procs; run" >&2
  echo "  cargo test --release -p procsync-cli --test procs --no-run" >&2
  exit 1
fi
echo "test binary: $bin"

hog_pids=()
test_pid=
stop_all() {
  if [[ -n "$test_pid" ]]; then kill "$test_pid" 2>/dev/null || true; fi
  for pid in "${hog_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${hog_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  hog_pids=()
}
trap stop_all EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM HUP
for _ in $(seq 1 "$hogs"); do
  ( while :; do :; done ) &
  hog_pids+=("$!")
done
echo "$hogs CPU hogs running (pids ${hog_pids[*]}); $runs runs; logs of failures in $logdir"

failed=0
start=$(date +%s)
for i in $(seq 1 "$runs"); do
  log="$logdir/run-$i.log"
  t0=$(date +%s)
  # In the background and waited for, so that a signal interrupts the wait at once.
  "$bin" "$@" >"$log" 2>&1 &
  test_pid=$!
  status=0
  wait "$test_pid" || status=$?
  test_pid=
  if [[ $status -eq 0 ]]; then
    echo "run $i/$runs: ok ($(( $(date +%s) - t0 )) s) $(grep -E '^test result:' "$log" | tail -1)"
    rm -f "$log"
  else
    failed=$((failed + 1))
    echo "run $i/$runs: FAILED ($(( $(date +%s) - t0 )) s, status $status), log: $log"
    grep -E '^test .* FAILED$' "$log" | sed 's/^/    /' || true
  fi
done
stop_all
echo "stress suite: $((runs - failed)) of $runs runs passed, $failed failed, $(( $(date +%s) - start )) s," \
  "$hogs CPU hogs, load average now $(cut -d' ' -f1-3 /proc/loadavg)"
[[ $failed -eq 0 ]]
