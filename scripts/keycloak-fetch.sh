#!/usr/bin/env bash
# Fetches Keycloak's server distribution (org.keycloak:keycloak-quarkus-dist, tar.gz) from Maven
# Central with Maven's own client, once per version, and unpacks it into a cache outside the
# checkout. Prints the Keycloak home directory (with bin/kc.sh) on its last line. A no-op when
# that version is already unpacked and prepared.
#
# Then, once, it prepares what makes each test start quick (tests/python/keycloak_server.py):
# Keycloak's dev image built for an H2 file database, and an H2 database in which Keycloak has
# already bootstrapped itself (schema, master realm, the tests' bootstrap admin), kept as a
# template in <home>/lakests-h2-template. Each test copies it; none writes into it.
#
#   LAKESTS_KEYCLOAK_VERSION  (default below)
#   LAKESTS_CACHE_DIR         cache root (default: ${XDG_CACHE_HOME:-~/.cache}/lakests)
set -euo pipefail

# Standard output carries the printed directory and nothing else (callers capture it with
# $(...)); everything else goes to standard error. Processes that may outlive a step run with
# descriptor 3 closed so they cannot hold the caller's $(...) open.
exec 3>&1 1>&2

version="${LAKESTS_KEYCLOAK_VERSION:-26.7.3}"
cache_root="${LAKESTS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lakests}"
home="$cache_root/keycloak-$version"

say() { printf 'keycloak-fetch.sh: %s\n' "$*" >&2; }

java_home() {
  local cand rel
  for cand in "${LAKESTS_TEST_JAVA_HOME:-}" "${JAVA_HOME:-}" $(ls -d /usr/lib/jvm/* 2>/dev/null | sort -r); do
    [ -n "$cand" ] && [ -x "$cand/bin/java" ] && [ -f "$cand/release" ] || continue
    rel=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$cand/release")
    if [ -n "$rel" ] && [ "$rel" -ge 21 ]; then echo "$cand"; return 0; fi
  done
  return 1
}

# The bootstrap admin of the template database; tests/python/keycloak_server.py uses the same.
admin_user=lakests-test-admin
admin_password=lakests-test-admin-password

prepare_template() {
  local template="$home/lakests-h2-template" jh port mport work pid i
  [ -f "$template/keycloakdb.mv.db" ] && return 0
  if ! jh=$(java_home); then
    say "Keycloak needs Java 21 or later and none was found (set LAKESTS_TEST_JAVA_HOME)"
    exit 1
  fi
  say "preparing Keycloak's dev image and a bootstrapped H2 template (once; a minute or two)"
  work=$(mktemp -d "$home/.template.XXXXXX")
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  JAVA_HOME="$jh" KC_BOOTSTRAP_ADMIN_USERNAME=$admin_user KC_BOOTSTRAP_ADMIN_PASSWORD=$admin_password \
    JAVA_OPTS_APPEND="-XX:TieredStopAtLevel=1 -XX:+AutoCreateSharedArchive -XX:SharedArchiveFile=$home/lakests-cds.jsa" \
    "$home/bin/kc.sh" start-dev --db=dev-file --db-url="jdbc:h2:file:$work/keycloakdb;NON_KEYWORDS=VALUE" \
    --http-host=127.0.0.1 --http-port="$port" --http-management-port="$mport" >"$work/keycloak.log" 2>&1 3>&- &
  pid=$!
  for i in $(seq 1 600); do
    if curl -sf -o /dev/null "http://127.0.0.1:$port/realms/master"; then break; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      say "Keycloak exited while preparing the template:"; tail -20 "$work/keycloak.log" >&2; exit 1
    fi
    sleep 1
  done
  kill "$pid"
  wait "$pid" || true
  if ! grep -q "Bootstrap completed" "$work/keycloak.log"; then
    say "Keycloak did not bootstrap while preparing the template:"; tail -20 "$work/keycloak.log" >&2; exit 1
  fi
  mkdir -p "$work/template"
  mv "$work/keycloakdb.mv.db" "$work/template/"
  rm -rf "$template"
  mv "$work/template" "$template"
  rm -rf "$work"
}

if [ -x "$home/bin/kc.sh" ] && [ -f "$home/.complete" ]; then
  prepare_template
  echo "$home" >&3
  exit 0
fi
if ! command -v mvn >/dev/null; then
  say "Maven (mvn) is not installed: the Keycloak suite fetches Keycloak from Maven Central with it"
  exit 1
fi

say "fetching org.keycloak:keycloak-quarkus-dist:$version:tar.gz from Maven Central into $home"
mkdir -p "$cache_root"
tmp=$(mktemp -d "$cache_root/.keycloak-$version.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mvn -q -B org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
  -Dartifact="org.keycloak:keycloak-quarkus-dist:$version:tar.gz" \
  -DoutputDirectory="$tmp" -Dmdep.stripVersion=false >&2
tar -xzf "$tmp/keycloak-quarkus-dist-$version.tar.gz" -C "$tmp"
rm -rf "$home"
mv "$tmp/keycloak-$version" "$home"
touch "$home/.complete"
prepare_template
echo "$home" >&3
