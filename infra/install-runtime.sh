#!/usr/bin/env bash
# Install the fleetflow runtime: the one set of install steps shared by infra/Dockerfile and the
# test suite (tests/integration/test_runtime_install.py runs this script into a fresh virtualenv),
# so an install step that breaks fails CI even where no Docker engine is available.
#
# Usage: infra/install-runtime.sh PYTHON PROJECT_DIR [VENV_DIR]
#
#   PYTHON       the interpreter to install with, e.g. `python3` or /usr/local/bin/python
#   PROJECT_DIR  a directory holding fleetflow's pyproject.toml, README.md and src/
#   VENV_DIR     optional: create (or reuse) a virtualenv here with PYTHON and install into it;
#                without it, fleetflow goes into PYTHON's own environment
#
# What it does:
#   1. installs PROJECT_DIR[aws,postgres] as a regular (non-editable) package: the image must not
#      depend on the source tree, and nothing is installed when a container starts;
#   2. checks the installed set is consistent (`pip check`: aiobotocore pins botocore tightly);
#   3. imports what an ECS flow run and the worker need, and runs the `fleetflow` command once.
#
# pip settings come from the environment as usual (PIP_NO_CACHE_DIR=1 in the Dockerfile,
# PIP_INDEX_URL / PIP_FIND_LINKS for mirrors). Prints progress on stderr; exits non-zero on any
# failure.
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
  sed -n '6,12p' "${BASH_SOURCE[0]}" >&2
  exit 2
fi
python="$1"
project_dir="$2"
venv_dir="${3:-}"

log() { echo "install-runtime: [${SECONDS}s] $*" >&2; }

if [[ ! -f "$project_dir/pyproject.toml" ]]; then
  log "$project_dir has no pyproject.toml; pass fleetflow's project directory"
  exit 2
fi

if [[ -n "$venv_dir" ]]; then
  if [[ ! -x "$venv_dir/bin/python" ]]; then
    log "creating virtualenv $venv_dir"
    "$python" -m venv "$venv_dir"
  fi
  python="$venv_dir/bin/python"
fi
bin_dir="$("$python" -c 'import sys, sysconfig; print(sysconfig.get_path("scripts"))')"

log "installing $project_dir[aws,postgres] with $python"
# A regular install (not -e): the package is built from PROJECT_DIR and copied into
# site-packages, so the source copy can be deleted afterwards (the Dockerfile does).
"$python" -m pip install --quiet --disable-pip-version-check "${project_dir%/}[aws,postgres]"

log "checking installed requirements are consistent"
"$python" -m pip check

log "checking the runtime imports"
"$python" - <<'EOF'
import importlib
import importlib.util

# What `python -m fleetflow.runner <id>` needs inside an ECS task (S3 bundles, ECS/CloudWatch via
# boto3/aiobotocore, PostgreSQL), and what `fleetflow worker start` needs to launch ECS tasks.
required = ["fleetflow", "fleetflow.runner", "fleetflow.worker", "fleetflow.aws", "fleetflow.aws.s3",
            "fleetflow.cli", "s3fs", "aiobotocore", "boto3", "botocore", "psycopg"]
# Modules that exist only in newer versions of the package: imported when present.
optional = ["fleetflow.aws.ecs_launcher"]
for name in required + [m for m in optional if importlib.util.find_spec(m) is not None]:
    importlib.import_module(name)
import fleetflow
print(f"fleetflow {fleetflow.__version__} imports OK")
EOF

"$bin_dir/fleetflow" --help >/dev/null
log "done: $bin_dir/fleetflow"
