"""Compatibility path: results live in :mod:`fleetflow.results` (the results room)."""

from ..results import (  # noqa: F401
    INLINE_LIMIT,
    LocalResultStorage,
    ResultStorage,
    default_result_storage,
    load_result,
    persist_result,
    register_result_storage,
)
