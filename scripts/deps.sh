#!/usr/bin/env bash
# Install what `make test` / `make demo` need and this machine lacks:
# Debian packages (check, pkg-config, musl-tools, ...; SQLite itself is
# built in from deps/sqlite) and the npm packages pinned in
# package-lock.json.  Idempotent and quiet when all is there; never asks
# questions (CI has no terminal).
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential python3 pkg-config check redis-server musl-tools)
# --arm64: what `make test-arm64` needs (a cross compiler and qemu).
if [ "${1:-}" = --arm64 ]; then
  pkgs=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "deps: node and npm are required (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
# npm packages: reinstall when the lockfile changed since the last install.
if [ -f package-lock.json ]; then
  stamp=node_modules/.kvshm-lock-stamp
  if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
    echo "deps: npm ci"
    npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json "$stamp"
  fi
fi
