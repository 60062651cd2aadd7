"""The HTTP server room: the FastAPI app (``api/`` JSON routes, ``ui/`` pages) over the store.

Also home of Prefect-compatible import paths under ``server.schemas`` (schedules), which are
thin re-exports so a Prefect 2 user's imports resolve.
"""
