#!/usr/bin/env bash
# Re-vendor SQLite: take sqlite3.c and sqlite3.h from the official
# "autoconf" amalgamation tarball that the npm package `sqlite3` ships
# (npm's registry is reachable where sqlite.org may not be), checking the
# tarball against the digest below.  To move to another SQLite: change
# NPM_PKG, TARBALL and TARBALL_SHA256 (compare the digest with the one
# sqlite.org publishes for that release), run this, update README.md's
# version and digests, and run make test.
set -euo pipefail
cd "$(dirname "$0")"

NPM_PKG=sqlite3@6.0.1
TARBALL=sqlite-autoconf-3520000.tar.gz
TARBALL_SHA256=f6b50b0c103392af32a8be15b2b9d25959de9a00a70c3979128aafeaa5338b3f

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack "$NPM_PKG" --silent >/dev/null && tar xzf ./*.tgz)
src="$tmp/package/deps/$TARBALL"
echo "$TARBALL_SHA256  $src" | sha256sum -c --quiet
tar xzf "$src" -C "$tmp"
dir="$tmp/${TARBALL%.tar.gz}"
cp "$dir/sqlite3.c" "$dir/sqlite3.h" .
grep -m1 '#define SQLITE_VERSION ' sqlite3.h
sha256sum sqlite3.c sqlite3.h
