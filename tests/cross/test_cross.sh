#!/usr/bin/env bash
# test_cross.sh musl|arm64 BUILD_DIR HOST_CLI - the library built for another
# C library or architecture, run as far as this machine can run it.
#
#   musl   built with musl-gcc; runs natively: a short torture run (C
#          writers killed with kill -9 in every mode, the musl reaper
#          included), then the refusal of a segment made with the other C
#          library, both ways (their pthread_mutex_t words differ).
#   arm64  cross-built with aarch64-linux-gnu-gcc; run under
#          qemu-aarch64-static (no binfmt here, so no reaper can be started
#          from it: KVSHM_REAPER=off): kvshm-cli on a memory-only cache and
#          on a SQLite one (flush writes it), and the x86-64 CLI's refusal.
#
# Output: a line per check and a summary line; exit 1 if any failed.
set -uo pipefail
target=$1 dir=$2 host_cli=$3
checks=0 failures=0
ok() { checks=$((checks + 1)); echo "ok - $*"; }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL - $*"; }
expect() { # expect DESCRIPTION PATTERN COMMAND...: exit 0 and PATTERN in the output
  local what=$1 pattern=$2
  shift 2
  local out
  if out=$("$@" 2>&1) && grep -q -- "$pattern" <<<"$out"; then ok "$what"; else
    bad "$what"
    echo "$out" | tail -15 | sed 's/^/    /'
  fi
}
expect_fail() { # expect_fail DESCRIPTION PATTERN COMMAND...
  local what=$1 pattern=$2
  shift 2
  local out
  if out=$("$@" 2>&1); then bad "$what (it succeeded)"; echo "$out" | sed 's/^/    /'
  elif grep -q -- "$pattern" <<<"$out"; then ok "$what"
  else bad "$what (no '$pattern' in:)"; echo "$out" | tail -15 | sed 's/^/    /'; fi
}
n=kvshm-cross-$$
work=$(mktemp -d /tmp/kvshm-cross.XXXXXX)
cleanup() {
  for f in /dev/shm/kvshm.$n-*; do
    [ -e "$f" ] && rm -f "$f"
  done
  rm -rf "$work"
}
trap cleanup EXIT

case $target in
musl)
  cli=$dir/kvshm-cli
  expect "the musl kvshm-cli links musl's loader only" "ld-musl" \
    sh -c "readelf -l '$cli' | grep interpreter"
  expect "short torture run, every mode, musl writers and reaper killed with kill -9" \
    "3 passed, 0 failed" \
    env TORTURE_NODE_WORKERS=0 TORTURE_ROUNDS=1 TORTURE_ROUND_MS=4500 "$dir/tests/torture"
  expect "musl kvshm-cli: a SQLite cache, set, incr, flush, verify" "1 entries\|ok (" \
    sh -c "'$cli' set --create --sqlite '$work/m.db' $n-m k v && '$cli' incr $n-m c &&
           '$cli' flush $n-m && '$cli' verify $n-m"
  # musl's dladdr names the main program by the path it was started as:
  # the reaper must come from beside the real file, never beside a symlink.
  mkdir -p "$work/planted"
  ln -s "$(realpath "$dir/tests/cli-writer")" "$work/planted/cli-writer"
  printf '#!/bin/sh\ntouch "%s/planted-ran"\nsleep 5\n' "$work" >"$work/planted/kvshm-reaper"
  chmod +x "$work/planted/kvshm-reaper"
  expect "a musl program run through a symlink starts the reaper built with it" \
    "^$(realpath "$dir")/kvshm-reaper\$" "$work/planted/cli-writer" $n-m reaper -
  expect_fail "... and not the one planted beside the symlink" "" test -e "$work/planted-ran"
  expect_fail "glibc kvshm-cli refuses the musl segment" "built for musl on x86-64" \
    "$host_cli" get $n-m k
  expect "musl kvshm-cli destroys it" "destroyed" "$cli" destroy --yes $n-m
  expect "glibc kvshm-cli makes a segment" "" "$host_cli" set --create $n-g k v
  expect_fail "musl kvshm-cli refuses the glibc segment" "built for glibc on x86-64" \
    "$cli" get $n-g k
  expect "glibc kvshm-cli destroys it" "destroyed" "$host_cli" destroy --yes $n-g
  ;;
arm64)
  q() { KVSHM_REAPER=off qemu-aarch64-static -L /usr/aarch64-linux-gnu "$@"; }
  cli=$dir/kvshm-cli
  expect "the arm64 kvshm-cli is an AArch64 program" "AArch64" \
    sh -c "readelf -h '$cli' | grep Machine"
  expect "arm64 kvshm-cli --help, under qemu" "^usage: kvshm-cli" q "$cli" --help
  expect "arm64: a memory-only cache: set, incr x3, get, keys, verify" "ok (" \
    sh -c "$(declare -f q); q '$cli' set --create $n-a k v && q '$cli' incr $n-a c &&
           q '$cli' incr $n-a c && [ \"\$(q '$cli' incr $n-a c)\" = 3 ] &&
           [ \"\$(q '$cli' get $n-a k)\" = v ] && q '$cli' keys $n-a | grep -q c &&
           q '$cli' verify $n-a"
  expect_fail "the x86-64 kvshm-cli refuses the arm64 segment" "on arm64" \
    "$host_cli" get $n-a k
  expect "arm64 kvshm-cli destroys it" "destroyed" q "$cli" destroy --yes $n-a
  expect "arm64: a SQLite cache: set, flush, then read back from the file" "from-sqlite" \
    sh -c "$(declare -f q); q '$cli' set --create --sqlite '$work/a.db' $n-s k from-sqlite &&
           q '$cli' flush $n-s && q '$cli' destroy --yes $n-s >/dev/null &&
           q '$cli' set --create --sqlite '$work/a.db' $n-s other x &&
           q '$cli' get $n-s k && q '$cli' destroy --yes $n-s >/dev/null"
  ;;
*)
  echo "usage: test_cross.sh musl|arm64 BUILD_DIR HOST_CLI" >&2
  exit 2
  ;;
esac
echo "cross ($target): $checks checks, $failures failures"
exit $((failures > 0))
