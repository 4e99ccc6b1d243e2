#!/usr/bin/env bash
# Runs every test of lakests: formatting and lints, the Rust suites (unit, black-box, storage
# conformance on SQLite and PostgreSQL, third-party OpenID Providers from npm, headless
# Chromium), and the Python suite (the real lakeFS SDK, PyJWT, a real lakeFS server and lakectl,
# a real Keycloak).
#
# On a fresh machine it installs what the tests need first: the Python packages of
# tests/python/requirements.txt into .venv, the npm packages of every tests/*/package.json
# (npm ci), and Debian's chromium when it is missing (as root). It builds the real lakeFS and
# lakectl (Go module proxy, scripts/lakefs-build.sh) and fetches Keycloak (Maven Central,
# scripts/keycloak-fetch.sh) once per version into ~/.cache/lakests; later runs reuse them. Go,
# Maven and a Java 21+ runtime must be installed; without them the script fails (no skip).
#
# PostgreSQL: scripts/postgres.sh installs and starts a loopback server (as root), or
# LAKESTS_TEST_POSTGRES_URL names one of yours. Without a server the PostgreSQL suites say loudly
# that they were skipped; with LAKESTS_TEST_REQUIRE_POSTGRES=1 (as in CI) that is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

step() { printf '\n==> %s\n' "$*"; }

# The cache scripts print one directory on standard output; anything else is a bug to stop at.
checked_dir() {
  if [ ! -d "$2" ]; then
    echo "!!! $1 printed something other than one directory: $(printf '%s' "$2" | head -c 300) !!!" >&2
    exit 1
  fi
  printf '%s' "$2"
}

step "toolchain"
cargo --version
node --version
python3 --version

step "Python packages (.venv)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! cmp -s tests/python/requirements.txt .venv/.requirements.installed 2>/dev/null; then
  .venv/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
  cp tests/python/requirements.txt .venv/.requirements.installed
fi

step "npm packages"
for pkg in tests/*/package.json; do
  dir=$(dirname "$pkg")
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    touch "$dir/node_modules"
  fi
done

step "chromium"
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "Debian's chromium is missing: run 'sudo apt-get install -y chromium'" >&2
    exit 1
  fi
fi
/usr/bin/chromium --version

step "PostgreSQL"
# scripts/postgres.sh installs (as root, from Debian), starts and checks a loopback server, or
# uses LAKESTS_TEST_POSTGRES_URL as given.
if pg_url=$(./scripts/postgres.sh); then
  case "$pg_url" in
    postgres://* | postgresql://*) ;;
    *)
      echo "!!! scripts/postgres.sh printed something other than one PostgreSQL URL: $(printf '%s' "$pg_url" | head -c 200 | sed 's/:[^:@/]*@/:***@/') !!!" >&2
      exit 1
      ;;
  esac
  export LAKESTS_TEST_POSTGRES_URL="$pg_url"
  echo "PostgreSQL suites use ${LAKESTS_TEST_POSTGRES_URL%%@*}@..." | sed 's/:[^:@/]*@/:***@/'
elif [ "${LAKESTS_TEST_REQUIRE_POSTGRES:-}" = 1 ]; then
  echo "!!! PostgreSQL is required (LAKESTS_TEST_REQUIRE_POSTGRES=1) and could not be started !!!" >&2
  exit 1
else
  unset LAKESTS_TEST_POSTGRES_URL
  echo "!!! PostgreSQL is not reachable: the PostgreSQL suites will be SKIPPED (they say so loudly) !!!"
fi

step "real lakeFS and lakectl (Go module proxy; built once per version)"
# Go's module and build caches and ~/.cache/lakests keep the build between runs.
LAKESTS_TEST_LAKEFS_DIR=$(checked_dir lakefs-build.sh "$(./scripts/lakefs-build.sh)")
export LAKESTS_TEST_LAKEFS_DIR
"$LAKESTS_TEST_LAKEFS_DIR/lakefs" --version
# The web-UI single sign-on test needs lakeFS's UI, which a plain `go build` does not embed.
LAKESTS_TEST_LAKEFS_UI_DIR=$(checked_dir lakefs-ui-build.sh "$(./scripts/lakefs-ui-build.sh)")
export LAKESTS_TEST_LAKEFS_UI_DIR

step "Keycloak (Maven Central; fetched once per version)"
LAKESTS_TEST_KEYCLOAK_HOME=$(checked_dir keycloak-fetch.sh "$(./scripts/keycloak-fetch.sh)")
export LAKESTS_TEST_KEYCLOAK_HOME
cat "$LAKESTS_TEST_KEYCLOAK_HOME/version.txt"; echo

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo machete (no declared dependency goes unused)"
# Installed once from crates.io into ~/.cargo/bin; later runs reuse it.
if ! command -v cargo-machete >/dev/null; then
  cargo install --quiet --locked cargo-machete --version 0.9.2
fi
cargo machete

step "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo test"
cargo build --quiet -p lakests-cli
# --no-fail-fast: one run shows every failing suite, not only the first.
cargo test --workspace --no-fail-fast

step "benchmarks build (not run: they are noisy; ./bench/run.sh runs them)"
cargo test --quiet -p lakests-bench --benches --no-run

step "pytest (lakeFS Python SDK, real lakeFS + lakectl, Keycloak)"
LAKESTS_TEST_BIN="$root/target/debug/lakests" .venv/bin/python -m pytest -q tests/python

step "Schemathesis (the authorization API against lakeFS's spec)"
./tests/schemathesis/run.sh ../shared/reference/lakefs-authorization-api.yml 60

echo
echo "all tests passed"
