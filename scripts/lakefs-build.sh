#!/usr/bin/env bash
# Builds the real lakeFS server (`lakefs`) and `lakectl` at the release pinned in
# tests/lakefs/go.mod, once per version, into a cache outside the checkout, and prints that
# directory on its last line (the binaries are <dir>/lakefs and <dir>/lakectl).
#
# The source comes from the Go module proxy into Go's own module cache; Go's build cache makes a
# rebuild after a lost binary cache quick. Nothing of lakeFS is written into the checkout.
# A no-op (well under a second) when both binaries of that version are already there.
#
#   LAKESTS_CACHE_DIR   cache root (default: ${XDG_CACHE_HOME:-~/.cache}/lakests)
set -euo pipefail

# Standard output carries the printed directory and nothing else (callers capture it with
# $(...)); everything else goes to standard error. Processes that may outlive a step run with
# descriptor 3 closed so they cannot hold the caller's $(...) open.
exec 3>&1 1>&2
cd "$(dirname "$0")/../tests/lakefs"

say() { printf 'lakefs-build.sh: %s\n' "$*" >&2; }

version=$(awk '$1 == "github.com/treeverse/lakefs" { print $2; exit }
               $1 == "require" && $2 == "github.com/treeverse/lakefs" { print $3; exit }' go.mod)
if [ -z "$version" ]; then
  say "tests/lakefs/go.mod does not require github.com/treeverse/lakefs"
  exit 1
fi
cache_root="${LAKESTS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lakests}"
dir="$cache_root/lakefs-$version"

if [ -x "$dir/lakefs" ] && [ -x "$dir/lakectl" ] && [ -f "$dir/.complete" ]; then
  echo "$dir" >&3
  exit 0
fi

if ! command -v go >/dev/null; then
  say "Go is not installed: the real-lakeFS suites need Go (see tests/lakefs/go.mod for the version)"
  exit 1
fi

say "building lakefs and lakectl $version into $dir (once per version; several minutes on a cold cache)"
mkdir -p "$cache_root"
tmp=$(mktemp -d "$cache_root/.build-$version.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# The same -X lakeFS's Makefile sets, so `lakefs --version` and lakectl's version checks see
# the release and not "dev".
ldflags="-X github.com/treeverse/lakefs/pkg/version.Version=${version#v}"
start=$(date +%s)
nice -n 10 go build -mod=readonly -ldflags "$ldflags" -o "$tmp/" \
  github.com/treeverse/lakefs/cmd/lakefs github.com/treeverse/lakefs/cmd/lakectl
"$tmp/lakefs" --version >&2
"$tmp/lakectl" --version >&2
touch "$tmp/.complete"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
say "built in $(($(date +%s) - start)) s"
echo "$dir" >&3
