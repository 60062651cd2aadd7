"""The backends the suite runs on (``FLEETFLOW_TEST_BACKENDS``, default ``sqlite,postgres,http``).

A plain module so a test can parametrize ``client_backend`` itself over a subset (e.g. the
Terraform proof on the direct path: ``sqlite`` and ``postgres`` only) and still honour the
setting; ``tests/conftest.py`` builds its fixtures' parameters from the same list.
"""

from __future__ import annotations

import os

import pytest

BACKENDS = [b.strip() for b in os.environ.get("FLEETFLOW_TEST_BACKENDS", "sqlite,postgres,http").split(",") if b.strip()]
STORE_BACKENDS = [b for b in BACKENDS if b in ("sqlite", "postgres")]


def backend_params(names: list[str]) -> list:
    """``pytest.param`` for each of ``names`` that is configured, PostgreSQL ones marked ``postgres``."""
    return [pytest.param(b, marks=[pytest.mark.postgres] if "postgres" in b else []) for b in names if b in BACKENDS]
