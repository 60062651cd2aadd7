#!/usr/bin/env bash
# System packages the test suite needs, installed once before pytest starts (so parallel test
# workers never race on apt): Debian's PostgreSQL server binaries for the team-path tests.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  exit 0
fi
if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
  echo "PostgreSQL server binaries missing: install Debian's 'postgresql' package (as root), or run" >&2
  echo "the suite with FLEETFLOW_TEST_BACKENDS=sqlite" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
echo "installed postgresql: $(ls -d /usr/lib/postgresql/*/bin)"
