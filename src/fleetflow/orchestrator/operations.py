"""Store operations served generically over HTTP (``POST /api/v1/ops/{name}``): the worker's
lease and launch-attempt family and work queues. One table names each operation and what
may call it; the server and the HTTP client both read it, and the types of arguments and
results come from the store's own signatures."""

from __future__ import annotations

# operation -> who may call it: "worker" (worker or admin key), "admin", "read" (any key), or
# "run" (also a run token, for its own run: see fleetflow.server.api.ops).
OPERATIONS: dict[str, str] = {
    "begin_launch_attempt": "worker",
    "claim_launch": "run",
    "renew_leases": "run",
    "acquire_lease": "run",
    "read_expired_leases": "worker",
    "take_over_lease": "worker",
    "reschedule_flow_run": "worker",
    "relaunch_flow_run": "worker",
    "read_worker": "read",
    "claim_worker_name": "worker",
    "release_worker_name": "worker",
    "create_work_queue": "admin",
    "read_work_queues": "read",
    "read_work_queue": "read",
    "update_work_queue": "admin",
    "delete_work_queue": "admin",
    "set_deployment_work_queue": "admin",
    "read_deployment_work_queue": "read",
}
