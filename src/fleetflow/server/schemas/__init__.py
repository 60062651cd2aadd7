"""Prefect-compatible ``server.schemas`` import paths (thin re-exports of fleetflow objects)."""
