#!/usr/bin/env bash
# Install Python packages into a virtualenv, fast: with uv when it can be had, else with pip.
#
# Why: on a busy 2-core machine pip took 268 s to resolve and install `.[all]` where uv took
# 24 s (benchmarks/results/setup_install.json). uv is itself a wheel from PyPI, installed into
# the same virtualenv, so nothing outside the project's files is needed. If uv cannot be
# installed or fails, pip does the same install: slower, never a different outcome for the user.
#
# Usage: scripts/venv_install.sh VENV PIP-INSTALL-ARGS...   (e.g. .venv -e ".[all]")
# Env:   UV (a uv binary to use, e.g. the project venv's, so a second venv needs no uv of its own);
#        FLEETFLOW_NO_UV=1 (pip only).
set -euo pipefail
venv="$1"; shift
UV_SPEC="uv>=0.9,<1"
if [[ "${FLEETFLOW_NO_UV:-}" != 1 ]]; then
  uv="${UV:-$venv/bin/uv}"
  if [[ ! -x "$uv" ]]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$UV_SPEC" >&2 || true
    uv="$venv/bin/uv"
  fi
  if [[ -x "$uv" ]]; then
    # System CA bundle, as pip uses: a CI behind a TLS-inspecting proxy works the same.
    # --compile-bytecode: pip writes .pyc files at install and uv does not. Without them every
    # interpreter compiles what it imports from source, and with PYTHONDONTWRITEBYTECODE=1 (set
    # on these machines) it never stops doing so: `import fleetflow.worker` took 1.2 s of CPU
    # instead of 0.5 s, in every worker, runner and CLI process the suite starts.
    if UV_NATIVE_TLS=1 "$uv" pip install --quiet --compile-bytecode --python "$venv/bin/python" "$@"; then
      exit 0
    fi
    echo "venv_install: uv failed; installing with pip instead" >&2
  fi
fi
exec "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
