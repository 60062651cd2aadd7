#!/usr/bin/env bash
# Everything the test suite needs beyond the Python packages, built once before pytest starts
# (`make test-deps`), outside any test's timeout, and cached so a second run does nothing:
#
#   PostgreSQL server binaries  Debian's `postgresql` (apt, as root) for the team-path tests
#   Terraform provider mirror   scripts/terraform_mirror.sh -> .cache/terraform (keyed by provider version)
#   checkov                     scripts/terraform_mirror.sh -> .cache/checkov-venv (keyed by checkov version)
#   runtime wheelhouse          scripts/runtime_wheelhouse.py -> .cache/runtime-wheels/<pyproject hash>
#
# Tests never build these themselves: a missing piece fails with one line naming `make test-deps`.
# Usage: scripts/ensure_test_deps.sh [PYTHON]   (PYTHON: the project's venv python, default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${1:-.venv/bin/python}"

step() { echo "test-deps: $*" >&2; }

apt_install() {
  if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
    echo "test-deps: Debian packages $* are missing; install them as root (apt-get install $*)," >&2
    echo "or run the suite with FLEETFLOW_TEST_BACKENDS=sqlite" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # apt holds its own lock and fails a second caller instead of waiting: serialise callers.
  exec 8>/tmp/fleetflow-apt.lock
  flock 8
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  exec 8>&-
}

if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  step "installing postgresql"
  apt_install postgresql
fi

step "terraform provider mirror and checkov"
bash scripts/terraform_mirror.sh >/dev/null

step "runtime wheelhouse"
"$PYTHON" scripts/runtime_wheelhouse.py >/dev/null
step "ready"
