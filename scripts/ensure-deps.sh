#!/bin/sh
# Installs what harbor-replicator needs and is missing, then builds:
#   - docker-registry, skopeo, htpasswd (apache2-utils), openssl, chromium (the console's browser
#     tests: Debian's build, never a downloaded one) through apt when absent;
#   - npm packages with `npm ci` when node_modules is missing or older than package-lock.json.
set -eu
cd "$(dirname "$0")/.."

missing=""
command -v docker-registry >/dev/null 2>&1 || missing="$missing docker-registry"
command -v skopeo >/dev/null 2>&1 || missing="$missing skopeo"
command -v htpasswd >/dev/null 2>&1 || missing="$missing apache2-utils"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
[ -x /usr/bin/chromium ] || missing="$missing chromium"
if [ -n "$missing" ]; then
  echo "ensure-deps: installing$missing with apt-get" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "ensure-deps: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi

node scripts/build.js
