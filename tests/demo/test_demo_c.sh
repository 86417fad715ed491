#!/usr/bin/env bash
# tests/demo/test_demo_c.sh - tests of the C demo (make demo-c), run by
# `make test-demo-c`:
#
#   tests/demo/test_demo_c.sh BUILD/demo/demo_shm BUILD/kvshm-cli
#
# A run passes and leaves no segment; a cache left under the name an earlier
# run with the same pid used does not disturb it (and is not touched); and a
# run stopped at any moment by Ctrl-C (SIGINT to the job), SIGTERM (to the
# parent alone) or SIGHUP leaves no segment and no worker.  Prints "ok N -"
# / "not ok N -" per check and "demo-c: N passed, M failed" last.

set -u
D=${1:?usage: test_demo_c.sh path/to/demo_shm path/to/kvshm-cli}
K=${2:?usage: test_demo_c.sh path/to/demo_shm path/to/kvshm-cli}
T=$(mktemp -d "${TMPDIR:-/tmp}/kvshm-demo-c-test.XXXXXX")
passed=0 failed=0 n=0
MADE=()   # caches this script made itself

# Only this shell cleans up: a background job's subshell killed by a
# signal before it execs the demo must not run this (and remove $T).
MAIN=$BASHPID
cleanup() {
  [ "$BASHPID" = "$MAIN" ] || return 0
  for c in "${MADE[@]}"; do "$K" destroy --yes "$c" >/dev/null 2>&1; done
  rm -rf "$T"
}
trap cleanup EXIT

ok() { n=$((n + 1)); passed=$((passed + 1)); echo "ok $n - $1"; }
nok() {
  n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"
  if [ -n "${2:-}" ]; then printf '%s\n' "$2" | head -20 | sed 's/^/#   /'; fi
}
check() { local d=$1; shift; if "$@"; then ok "$d"; else nok "$d" "${WHY:-}"; fi; }
# The segments of the demo run with pid $1: "demo-<pid>-<random>" (and
# "demo-<pid>", the name earlier versions used).
segments() { (cd /dev/shm && ls -d kvshm.demo-"$1" kvshm.demo-"$1"-* 2>/dev/null); }

# ---- a run ------------------------------------------------------------------
"$D" >"$T/out" 2>&1 &
pid=$!
wait "$pid"; rc=$?
WHY=$(cat "$T/out")
check "a run exits 0" test "$rc" = 0
check "a run says OK" grep -q "removed the segment; .* OK$" "$T/out"
check "a run leaves no segment" test -z "$(segments "$pid")"

# ---- a leftover under the pid's name ----------------------------------------
# An earlier version named the cache demo-<pid> and attached to a dead run's
# cache of that name (pids are reused; a new container starts them again).
# exec keeps the pid: the leftover has the name this run would have had.
bash -c '"$1" set --create "demo-$$" demo:counter 5 >/dev/null && exec "$2"' \
  _ "$K" "$D" >"$T/out" 2>&1 &
pid=$!
wait "$pid"; rc=$?
MADE+=("demo-$pid")
WHY=$(cat "$T/out")
check "a cache left as demo-<pid> does not disturb a run (exit 0)" test "$rc" = 0
check "its counter is exact" grep -q "(expected 12000) exact" "$T/out"
check "the leftover is not touched" \
  test "$("$K" get "demo-$pid" demo:counter 2>&1)" = 5

# ---- stopped by a signal ----------------------------------------------------
# Job control: each run is its own process group, as a shell's job is, so
# "kill -INT -PID" is Ctrl-C.  Runs take some 40 ms: stop them at several
# instants of it.
set -m
for how in "INT group" "TERM parent" "HUP group"; do
  read -r sig to <<<"$how"
  stopped=0 left="" alive=""
  for delay in 0 0.002 0.005 0.01 0.015 0.02 0.03 0.04; do
    "$D" >"$T/out" 2>&1 &
    pid=$!
    sleep "$delay"
    if [ "$to" = group ]; then kill -"$sig" -- -"$pid" 2>/dev/null
    else kill -"$sig" "$pid" 2>/dev/null; fi
    wait "$pid" 2>/dev/null; rc=$?
    [ "$rc" -gt 128 ] && stopped=$((stopped + 1))
    [ -n "$(segments "$pid")" ] && left+="$(segments "$pid") "
    sleep 0.05
    pgrep -g "$pid" >/dev/null && alive+="$pid "
    for s in $(segments "$pid"); do "$K" destroy --yes "${s#kvshm.}" >/dev/null; done
    pkill -KILL -g "$pid" 2>/dev/null
  done
  WHY="left: $left(removed)"
  check "SIG$sig to the $to at any instant leaves no segment" test -z "$left"
  WHY="workers of: $alive"
  check "SIG$sig to the $to at any instant leaves no worker" test -z "$alive"
  WHY="no run was stopped mid-way"
  check "SIG$sig: some runs were stopped mid-way ($stopped of 8)" test "$stopped" -gt 0
done

echo "demo-c: $passed passed, $failed failed"
[ "$failed" = 0 ]
