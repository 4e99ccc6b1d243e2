#!/usr/bin/env bash
# The lakests benchmark suite: one command, bounded time (a few minutes on 2 cores), results in
# bench/RESULTS.md. Needs wrk (apt-get install -y wrk), PostgreSQL on 127.0.0.1:5432 for the
# PostgreSQL figures (user postgres; its password, if it has one, in PGPASSWORD, which psql and
# lakests both read), and python3 (venv, PyPI) for the Python authenticator. Not run by CI (it
# is noisy); CI builds it so it cannot rot.
# `./bench/run.sh soak` runs only the soak (10,000 logins and 1,000,000 verifications, a few
# minutes) and updates its own section of bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq wrk >/dev/null; else echo "install wrk" >&2; exit 1; fi
fi
cargo build --release -p lakests-cli -p lakests-bench
# The criterion benches are built here too, outside the timed run (the release profile links
# with fat LTO: a minute or two).
cargo bench -p lakests-bench --bench hot --no-run
mkdir -p bench/out
if [ "${1:-}" = soak ]; then
  exec timeout 900 target/release/lakests-bench soak bench/RESULTS.md
fi
# The Python authenticator the login is compared with (issue 14, target 6): a virtual
# environment from its pinned requirements, rebuilt only when they change.
venv=target/bench-venv
req=bench/python-authenticator/requirements.txt
if ! cmp -s "$req" "$venv/requirements.txt" 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
  cp "$req" "$venv/requirements.txt"
fi
# The run's start (after the build and the virtual environment), so that the results can say
# how long the run took against the six minutes issue 14 allows it. The soak is its own command
# (`./bench/run.sh soak`, a few more minutes).
started=$(date +%s)
timeout 600 cargo bench -p lakests-bench --bench hot -- --warm-up-time 1 --measurement-time 2 2>&1 | tee bench/out/criterion.txt
LAKESTS_BENCH_STARTED="$started" LAKESTS_BENCH_PYTHON="$PWD/$venv/bin/python" timeout 900 target/release/lakests-bench bench/RESULTS.md
