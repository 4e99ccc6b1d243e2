#!/usr/bin/env bash
# Makes sure a PostgreSQL server for the test suites answers on 127.0.0.1:5432 (loopback only),
# then prints the connection URL the tests use on its last line.
#
# Idempotent and quick where the server already runs. On a fresh Debian machine, as root, it
# installs Debian's `postgresql` package, creates the cluster if there is none, makes it listen
# on 127.0.0.1 only, sets the password of the `postgres` role for TCP logins (scram-sha-256, as
# Debian's pg_hba.conf wants it) and starts it. Not as root, it only checks and says what is
# missing.
#
# LAKESTS_TEST_POSTGRES_URL, when set, is used as it is: nothing is installed or started.
set -euo pipefail

# Standard output carries the URL and nothing else: the callers capture it with $(...). Every
# other line, including what pg_ctlcluster or apt print on their standard output ("Removed stale
# pid file."), goes to standard error. Commands that may leave a daemon behind run with
# descriptor 3 closed, or the daemon would hold the caller's $(...) open for ever.
exec 3>&1 1>&2
print_url() { echo "$1" >&3; }

password="${LAKESTS_TEST_POSTGRES_PASSWORD:-lakests-test}"
url="postgres://postgres:${password}@127.0.0.1:5432/postgres"

say() { printf 'postgres.sh: %s\n' "$*" >&2; }

if [ -n "${LAKESTS_TEST_POSTGRES_URL:-}" ]; then
  print_url "$LAKESTS_TEST_POSTGRES_URL"
  exit 0
fi

port_open() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
login_works() { PGPASSWORD="$password" PGCONNECT_TIMEOUT=3 psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; }

if port_open && command -v psql >/dev/null && login_works; then
  print_url "$url"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  say "PostgreSQL does not answer on 127.0.0.1:5432 with the test password, and only root can install or start it here."
  say "Run this script as root, or set LAKESTS_TEST_POSTGRES_URL to a server of yours."
  exit 1
fi

if ! command -v pg_ctlcluster >/dev/null || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  say "installing Debian's postgresql package"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null 3>&-
fi

version=$(ls /usr/lib/postgresql | sort -V | tail -n1)
if [ ! -f "/etc/postgresql/$version/main/postgresql.conf" ]; then
  say "creating cluster $version/main"
  pg_createcluster "$version" main >/dev/null 3>&-
fi

# Loopback only, whatever the packaged default is (Debian's main config includes conf.d).
confd="/etc/postgresql/$version/main/conf.d"
mkdir -p "$confd"
cat >"$confd/lakests-tests.conf" <<'CONF'
# Written by lakests' scripts/postgres.sh: the test server listens on loopback only.
listen_addresses = '127.0.0.1'
port = 5432
max_connections = 200
CONF

if ! port_open; then
  say "starting cluster $version/main"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start 3>&-
  for _ in $(seq 1 60); do
    port_open && break
    sleep 0.5
  done
fi
if ! port_open; then
  say "PostgreSQL $version did not start; its log:"
  tail -n 30 "/var/log/postgresql/postgresql-$version-main.log" >&2 || true
  exit 1
fi

# The postgres role logs in over TCP with a password (peer authentication over the socket sets it).
su postgres -c "psql -Atq -d postgres -c \"ALTER ROLE postgres PASSWORD '${password}'\"" >/dev/null
if ! login_works; then
  say "PostgreSQL runs but the postgres role cannot log in over TCP; pg_hba.conf says:"
  grep -v '^#' "/etc/postgresql/$version/main/pg_hba.conf" | grep -v '^$' >&2 || true
  exit 1
fi
print_url "$url"
