#!/usr/bin/env bash
# test_package.sh TGZ - the packed package, installed the ways users install
# it, then used as they use it.
#
#  1. In a mount namespace where the C compiler, sqlite3.h and libsqlite3
#     are hidden (unshare -m + bind mounts; root only, else skipped with a
#     message): `npm install --ignore-scripts` of the tarball into an empty
#     project; the sync API, the SQLite tier with its reaper, ESM and CJS,
#     `npx kvshm-cli`; the project copied elsewhere and the original
#     removed (a Docker multi-stage COPY) still finds its reaper; with the
#     prebuilt files removed, `require` says how to build; installing with
#     scripts uses the prebuilt addon, and a tarball without prebuilt files
#     fails to install with a message naming what to install.
#  2. With the compiler back: a tarball without prebuilt files installs by
#     building from source (npm's own node-gyp, SQLite compiled in) and works.
#
# Everything is offline (the tarball has no dependencies).  Output: a line
# per check and a summary line; exit 1 if any failed.
set -uo pipefail

if [ "${1:-}" = --hidden ]; then
  shift
  hidden=1
else
  hidden=0
fi
tgz=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)

# ---- the part that runs with the compiler hidden ------------------------
if [ "$hidden" = 1 ]; then
  work=$2
  checks=0 failures=0
  ok() { checks=$((checks + 1)); echo "ok - $*"; }
  bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL - $*"; }
  expect() { # expect DESCRIPTION COMMAND...: passes if COMMAND succeeds
    local what=$1
    shift
    if out=$("$@" 2>&1); then ok "$what"; else bad "$what"; echo "$out" | sed 's/^/    /'; fi
  }
  expect_fail() { # expect_fail DESCRIPTION PATTERN COMMAND...
    local what=$1 pattern=$2
    shift 2
    if out=$("$@" 2>&1); then
      bad "$what (it succeeded)"
    elif grep -q -- "$pattern" <<<"$out"; then
      ok "$what"
    else
      bad "$what (no '$pattern' in:)"
      echo "$out" | tail -15 | sed 's/^/    /'
    fi
  }
  # Hide the compiler (every name of it, and cc1 behind them), the SQLite
  # headers and library.  A bind mount over a symlink covers its target.
  mount -t tmpfs -o size=1m kvshm-empty /usr/lib/gcc
  for c in cc gcc c99 c++ g++ x86_64-linux-gnu-gcc; do
    p=$(command -v "$c" 2>/dev/null) && mount --bind /dev/null "$(realpath "$p")"
  done
  for f in /usr/include/sqlite3.h /usr/lib/*/libsqlite3.so*; do
    [ -e "$f" ] && mount --bind /dev/null "$(realpath "$f")"
  done
  expect_fail "no C compiler works here" "" \
    sh -c 'echo "int main(void){return 0;}" | cc -x c - -o /dev/null'
  visible=$(for f in /usr/include/sqlite3.h /usr/lib/*/libsqlite3.so*; do
    [ -s "$f" ] && echo "$f"; done)
  if [ -z "$visible" ]; then ok "sqlite3.h and libsqlite3 are hidden"; else
    bad "sqlite3.h and libsqlite3 are hidden ($visible)"; fi

  app=$work/app
  mkdir -p "$app" && echo '{"name":"app","private":true}' >"$app/package.json"
  expect "npm install --ignore-scripts of the tarball, no compiler" \
    sh -c "cd '$app' && npm install --offline --no-audit --no-fund --loglevel=error --ignore-scripts '$tgz'"
  cp "$here"/app-cjs.js "$here"/app-esm.mjs "$app"/
  pre=$app/node_modules/kvshm/addon/prebuilds
  n=kvshm-pkg-$$
  expect "CJS: sync API, SQLite tier, the packaged reaper" \
    sh -c "cd '$app' && node app-cjs.js $n-cjs '$work/cjs.db' '$pre'"
  expect "ESM: named and default exports, the Promise facade, kvshm/keyv without keyv, kvshm/redis without ioredis" \
    sh -c "cd '$app' && node app-esm.mjs $n-esm"
  expect "npx kvshm-cli --help" \
    bash -o pipefail -c "cd '$app' && npx --offline kvshm-cli --help | grep -q '^usage: kvshm-cli'"
  expect "npx kvshm-cli ls / stats on a live cache" \
    bash -o pipefail -c "cd '$app' && node -e \"require('kvshm').open('$n-cli',{memory:'2mb'}).set('a','b')\" &&
           npx --offline kvshm-cli ls | grep -q '$n-cli' &&
           [ \"\$(npx --offline kvshm-cli get $n-cli a)\" = b ] &&
           npx --offline kvshm-cli destroy --yes $n-cli"
  expect_fail "npx kvshm-cli passes on the exit status" "unknown command" \
    sh -c "cd '$app' && npx --offline kvshm-cli no-such-command"

  # A copied project (Docker multi-stage COPY), the original gone.
  moved=$work/moved/elsewhere
  mkdir -p "$work/moved" && cp -a "$app" "$moved" && rm -rf "$app"
  expect "a moved node_modules still finds its reaper" \
    sh -c "cd '$moved' && node app-cjs.js $n-moved '$work/moved.db' '$moved/node_modules/kvshm/addon/prebuilds'"

  # A build from source for another platform (node_modules copied from an
  # Alpine builder) is not used: the prebuilt files are.
  foreign=$moved/node_modules/kvshm/addon/build/Release
  mkdir -p "$foreign" && echo linux-arm64-glibc >"$foreign/kvshm-platform"
  for f in kvshm.node kvshm-reaper kvshm-cli; do echo junk >"$foreign/$f"; done
  expect "a build from source for another platform is passed over" \
    sh -c "cd '$moved' && node -e \"require('kvshm').open('$n-f',{memory:'2mb',reaper:false}).destroy()\""
  rm -rf "$foreign" "$moved/node_modules/kvshm/addon/prebuilds"
  expect_fail "no prebuilt file and no build: require says how to build" "npm rebuild kvshm" \
    sh -c "cd '$moved' && node -e \"require('kvshm')\""
  expect_fail "no prebuilt file and no build: npx kvshm-cli says how to build" "npm rebuild kvshm" \
    sh -c "cd '$moved' && npx --offline kvshm-cli --help"

  app2=$work/app2
  mkdir -p "$app2" && echo '{"name":"app2","private":true}' >"$app2/package.json"
  expect "npm install with scripts uses the prebuilt addon, no compiler" \
    bash -o pipefail -c "cd '$app2' && npm install --offline --no-audit --no-fund --foreground-scripts '$tgz' 2>&1 | grep -q 'using the prebuilt addon'"
  expect_fail "... and builds nothing" "" test -e "$app2/node_modules/kvshm/addon/build"
  expect "... and it works" \
    sh -c "cd '$app2' && node -e \"const c=require('kvshm').open('$n-s',{memory:'2mb'});c.set('a',1);if(c.get('a')!==1)process.exit(1);c.destroy()\""
  app3=$work/app3
  mkdir -p "$app3" && echo '{"name":"app3","private":true}' >"$app3/package.json"
  expect_fail "no prebuilt file, no compiler: the install names what is missing" \
    "missing a C compiler" \
    sh -c "cd '$app3' && npm install --offline --no-audit --no-fund --foreground-scripts '$work/noprebuild.tgz'"
  echo "package (compiler hidden): $checks checks, $failures failures"
  exit $((failures > 0))
fi

# ---- the driver -----------------------------------------------------------
work=$(mktemp -d /tmp/kvshm-package.XXXXXX)
MAIN=$BASHPID
cleanup() {
  [ "$BASHPID" = "$MAIN" ] || return 0
  for f in /dev/shm/kvshm.kvshm-pkg-*; do
    [ -e "$f" ] && "$here/../../build/kvshm-cli" destroy --yes "${f#/dev/shm/kvshm.}" >/dev/null 2>&1
  done
  rm -rf "$work"
}
trap cleanup EXIT

# What is packed: what an installed package needs and its documents, and
# nothing of the repo's build, tests or tools.
checks=0 failures=0
listing=$(tar tzf "$tgz" | sed 's|^package/||')
missing=""
for f in package.json LICENSE README.md addon/README.md addon/index.d.ts \
  addon/promise.d.ts addon/keyv.d.ts addon/keyv.d.mts addon/lib/index.js \
  addon/lib/index.mjs addon/lib/locate.js addon/lib/keyv.js addon/lib/keyv.mjs \
  addon/lib/keyv-store.js addon/lib/shared.js addon/lib/redis.js \
  addon/lib/redis.mjs addon/lib/redis-listener.js addon/redis.d.ts \
  addon/bin/kvshm-cli.js addon/scripts/build.js addon/binding.gyp \
  addon/prebuilds/linux-x64-glibc/kvshm.node \
  addon/prebuilds/linux-x64-glibc/kvshm-reaper \
  addon/prebuilds/linux-x64-glibc/kvshm-cli \
  libshm/kvshm.h tools/kvshm-cli.c tools/kvshm-cli.1 tools/kvshm-reaper.c \
  deps/sqlite/sqlite3.c deps/sqlite/sqlite3.h deps/sqlite/options.txt \
  deps/sqlite/README.md; do
  grep -qx -- "$f" <<<"$listing" || missing="$missing $f"
done
stray=$(grep -E '(^|/)(build|test|tests|bench|examples|node_modules|\.ci)/|\.(o|a|db|tgz|log)$|\.tmp|prebuild-' <<<"$listing")
checks=$((checks + 1))
if [ -z "$missing$stray" ]; then
  echo "ok - the tarball holds what an install needs ($(wc -l <<<"$listing") files) and nothing else"
else
  failures=$((failures + 1))
  echo "FAIL - the tarball: missing:${missing:- none}; does not belong: ${stray:-none}"
fi

# The same tarball without its prebuilt files: what other platforms get.
mkdir "$work/unpacked"
tar xzf "$tgz" -C "$work/unpacked"
rm -rf "$work/unpacked/package/addon/prebuilds"
tar czf "$work/noprebuild.tgz" -C "$work/unpacked" package

status=0
if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
  unshare -m --propagation private "$0" --hidden "$tgz" "$work" || status=1
else
  echo "package: the install without a compiler is skipped (needs root, for unshare -m)"
fi

src=$work/src
mkdir -p "$src" && echo '{"name":"src","private":true}' >"$src/package.json"
cp "$here"/app-cjs.js "$src"/
if (cd "$src" && npm install --offline --no-audit --no-fund --loglevel=error \
  --foreground-scripts "$work/noprebuild.tgz" >"$work/build.log" 2>&1) &&
  [ -f "$src/node_modules/kvshm/addon/build/Release/kvshm.node" ]; then
  checks=$((checks + 1)); echo "ok - no prebuilt file: the install builds from source"
else
  checks=$((checks + 1)); failures=$((failures + 1))
  echo "FAIL - no prebuilt file: the install builds from source"
  tail -20 "$work/build.log" | sed 's/^/    /'
fi
if (cd "$src" && node app-cjs.js "kvshm-pkg-$$-src" "$work/src.db" \
  "$src/node_modules/kvshm/addon/build/Release") >"$work/run.log" 2>&1; then
  checks=$((checks + 1)); echo "ok - ... and the build from source works, SQLite tier and reaper included"
else
  checks=$((checks + 1)); failures=$((failures + 1))
  echo "FAIL - ... and the build from source works"; sed 's/^/    /' "$work/run.log"
fi
echo "package (from source): $checks checks, $failures failures"
[ "$failures" = 0 ] || status=1
exit $status
