#!/usr/bin/env bash
# Fetches Keycloak's server distribution (org.keycloak:keycloak-quarkus-dist, tar.gz) from Maven
# Central with Maven's own client, once per version, and unpacks it into a cache outside the
# checkout. Prints the Keycloak home directory (with bin/kc.sh) on its last line. A no-op when
# that version is already unpacked.
#
#   LAKESTS_KEYCLOAK_VERSION  (default below)
#   LAKESTS_CACHE_DIR         cache root (default: ${XDG_CACHE_HOME:-~/.cache}/lakests)
set -euo pipefail

version="${LAKESTS_KEYCLOAK_VERSION:-26.7.3}"
cache_root="${LAKESTS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lakests}"
home="$cache_root/keycloak-$version"

say() { printf 'keycloak-fetch.sh: %s\n' "$*" >&2; }

if [ -x "$home/bin/kc.sh" ] && [ -f "$home/.complete" ]; then
  echo "$home"
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
echo "$home"
