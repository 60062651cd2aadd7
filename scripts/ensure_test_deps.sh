#!/usr/bin/env bash
# Everything the test suite needs beyond the Python packages, built once before pytest starts
# (`make test-deps`), outside any test's timeout, and cached so a second run does nothing:
#
#   PostgreSQL server binaries  Debian's `postgresql` (apt, as root) for the team-path tests
#   Terraform provider mirror   scripts/terraform_mirror.sh -> .cache/terraform (keyed by provider version)
#   checkov                     scripts/terraform_mirror.sh -> .cache/checkov-venv (keyed by checkov version)
#   runtime wheelhouse          scripts/runtime_wheelhouse.py -> .cache/runtime-wheels/<pyproject hash>
#   chromium                    Debian's `chromium` (apt, as root) for tests/browser; Playwright's own
#                               browser download is never used
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

# Its own lock (a second caller waits for the first instead of racing apt), re-checked after
# taking it: another process may have installed chromium meanwhile.
if ! command -v chromium >/dev/null; then
  step "installing chromium (browser tests)"
  exec 9>/tmp/fleetflow-chromium.lock
  flock 9
  command -v chromium >/dev/null || apt_install chromium fonts-dejavu-core
  exec 9>&-
fi

# The three builds are independent and mostly wait on downloads and unpacking: run them side
# by side (each is idempotent and serialised against itself with flock), then report failures.
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
step "terraform provider mirror, checkov and the runtime wheelhouse (in parallel)"
bash scripts/terraform_mirror.sh --no-checkov >"$logs/mirror.out" 2>"$logs/mirror.err" & mirror=$!
bash scripts/terraform_mirror.sh --no-provider >"$logs/checkov.out" 2>"$logs/checkov.err" & checkov=$!
"$PYTHON" scripts/runtime_wheelhouse.py >"$logs/wheels.out" 2>"$logs/wheels.err" & wheels=$!
failed=0
for job in mirror:$mirror checkov:$checkov wheels:$wheels; do
  if ! wait "${job#*:}"; then
    echo "test-deps: ${job%%:*} failed:" >&2
    cat "$logs/${job%%:*}.err" >&2
    failed=1
  fi
done
[[ "$failed" == 0 ]] || exit 1
step "ready"
