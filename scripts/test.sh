#!/usr/bin/env bash
# Runs every test of lakests: formatting and lints, the Rust suites (unit, black-box, storage
# conformance on SQLite and PostgreSQL, third-party OpenID Providers from npm, headless
# Chromium), and the Python suite (the real lakeFS SDK, PyJWT).
#
# On a fresh machine it installs what the tests need first: the Python packages of
# tests/python/requirements.txt into .venv, the npm packages of every tests/*/package.json
# (npm ci), and Debian's chromium when it is missing (as root).
#
# PostgreSQL: LAKESTS_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres
# when a server answers there). Without it the PostgreSQL suites say loudly that they were
# skipped; with LAKESTS_TEST_REQUIRE_POSTGRES=1 they fail instead.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

step() { printf '\n==> %s\n' "$*"; }

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
if [ -z "${LAKESTS_TEST_POSTGRES_URL:-}" ]; then
  if (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
    export LAKESTS_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:5432/postgres"
  fi
fi
if [ -n "${LAKESTS_TEST_POSTGRES_URL:-}" ]; then
  echo "PostgreSQL suites use ${LAKESTS_TEST_POSTGRES_URL%%@*}@..."
else
  echo "!!! PostgreSQL is not reachable and LAKESTS_TEST_POSTGRES_URL is unset: the PostgreSQL suites will be SKIPPED !!!"
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo test"
cargo build --quiet -p lakests-cli
cargo test --workspace

step "benchmarks build (not run: they are noisy; ./bench/run.sh runs them)"
cargo test --quiet -p lakests-bench --benches --no-run

step "pytest (lakeFS Python SDK)"
LAKESTS_TEST_BIN="$root/target/debug/lakests" .venv/bin/python -m pytest -q tests/python

echo
echo "all tests passed"
