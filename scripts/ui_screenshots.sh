#!/usr/bin/env bash
# Regenerate the web UI screenshots in docs/ui/ by running the browser scenarios
# (tests/browser), which save one screenshot each. Needs Debian chromium (`make test-deps`).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
FLEETFLOW_UI_SCREENSHOTS="$PWD/docs/ui" "$PYTHON" -m pytest -q -p no:cacheprovider tests/browser "$@"
ls -1 docs/ui/*.png
