#!/usr/bin/env bash
# Builds the real lakeFS server WITH its web UI, at the release pinned in tests/lakefs/go.mod,
# into a cache outside the checkout, and prints that directory on its last line (the binary is
# <dir>/lakefs). The web-UI single sign-on test (tests/python/test_real_lakefs_ui_sso.py) needs
# it: a `go build` from the module proxy embeds an empty webui/dist ("lakeFS UI Not Built").
#
# What lakeFS's `make gen-ui` does, from the same module source: copy the module out of Go's
# read-only cache, `npm ci` + `npm run build` in its webui/ (lakeFS's own package-lock.json, from
# the npm registry), then `go build` with the copy replacing the module. Once per version.
#
#   LAKESTS_CACHE_DIR   cache root (default: ${XDG_CACHE_HOME:-~/.cache}/lakests)
set -euo pipefail

# Standard output carries the printed directory and nothing else (callers capture it with
# $(...)); everything else goes to standard error. Processes that may outlive a step run with
# descriptor 3 closed so they cannot hold the caller's $(...) open.
exec 3>&1 1>&2
cd "$(dirname "$0")/../tests/lakefs"

say() { printf 'lakefs-ui-build.sh: %s\n' "$*" >&2; }

version=$(awk '$1 == "github.com/treeverse/lakefs" { print $2; exit }
               $1 == "require" && $2 == "github.com/treeverse/lakefs" { print $3; exit }' go.mod)
cache_root="${LAKESTS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lakests}"
dir="$cache_root/lakefs-ui-$version"
if [ -x "$dir/lakefs" ] && [ -f "$dir/.complete" ]; then
  echo "$dir" >&3
  exit 0
fi
for tool in go npm; do
  command -v "$tool" >/dev/null || { say "$tool is needed"; exit 1; }
done

go mod download github.com/treeverse/lakefs
src=$(go list -m -f '{{.Dir}}' github.com/treeverse/lakefs)
say "building lakefs $version with its web UI into $dir (once per version; several minutes)"
mkdir -p "$cache_root"
tmp=$(mktemp -d "$cache_root/.build-ui-$version.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
cp -r "$src" "$tmp/lakefs-src"
chmod -R u+w "$tmp/lakefs-src"
(cd "$tmp/lakefs-src/webui" && npm ci --no-audit --no-fund --loglevel=error && nice -n 10 npm run build)
test -f "$tmp/lakefs-src/webui/dist/index.html"
# A throwaway main module: this directory's go.mod with the built copy replacing lakeFS.
mkdir "$tmp/mod"
cp go.mod go.sum "$tmp/mod/"
cp ./*.go "$tmp/mod/" 2>/dev/null || true
(cd "$tmp/mod" && go mod edit -replace "github.com/treeverse/lakefs=$tmp/lakefs-src" \
  && nice -n 10 go build -mod=mod -ldflags "-X github.com/treeverse/lakefs/pkg/version.Version=${version#v}" \
       -o "$tmp/out/" github.com/treeverse/lakefs/cmd/lakefs)
"$tmp/out/lakefs" --version >&2
touch "$tmp/out/.complete"
rm -rf "$dir"
mv "$tmp/out" "$dir"
trap - EXIT
rm -rf "$tmp"
say "built in $(($(date +%s) - start)) s"
echo "$dir" >&3
