"""Worker names: unique per process by default, and an explicit name is refused while a live
worker holds it (otherwise two workers would share one identity in the run records)."""

from __future__ import annotations

import datetime as dt
import secrets
import socket
from typing import TYPE_CHECKING, Any

from ..exceptions import WorkerNameInUse
from ..procinfo import ProcessId
from ..states import utcnow

if TYPE_CHECKING:
    from ..client.protocol import OrchestratorAPI


def default_name(pool_name: str) -> str:
    """``<host>-<pool>-<6 hex>``: two workers started on one host never share a name."""
    return f"{socket.gethostname()}-{pool_name}-{secrets.token_hex(3)}"


# A holder whose process is seen alive on this host keeps its name this many times longer than
# its heartbeat alone would: on a loaded host (or behind a busy server) a heartbeat can be a few
# seconds late, and handing a live worker's name to a second one would give two workers one
# identity. Bounded, so a reused pid cannot hold a dead worker's name for ever.
LOCAL_GRACE_FACTOR = 10


def holder_is_live(holder: Any, *, stale_after: float, now: dt.datetime | None = None,
                   local_alive: bool | None = None) -> bool:
    """Pure: does ``holder`` (a workers row) still own its name? A fresh heartbeat means yes,
    unless it is a process on this host that is known to be dead (``local_alive=False``); a
    late one still does while its process is seen alive on this host (``LOCAL_GRACE_FACTOR``)."""
    if holder is None or holder.last_heartbeat is None or holder.instance_id is None:
        return False  # never claimed, or released at a clean shutdown
    if local_alive is False:
        return False
    age = ((now or utcnow()) - holder.last_heartbeat).total_seconds()
    return age < stale_after * (LOCAL_GRACE_FACTOR if local_alive else 1)


def _local_alive(holder: Any) -> bool | None:
    if holder.hostname != socket.gethostname() or not holder.pid:
        return None  # another host: only its heartbeat can tell
    return ProcessId(holder.hostname, holder.pid, ProcessId.current(holder.pid).start).alive()


def claim_name(client: OrchestratorAPI, pool_name: str, name: str, instance_id: str, *, stale_after: float) -> None:
    """Take ``name`` in ``pool_name`` for this process, or raise WorkerNameInUse with the holder."""
    for _ in range(5):  # compare-and-set: retry if another starter changed the row meanwhile
        holder = client.read_worker(pool_name, name)
        if holder is not None and holder_is_live(holder, stale_after=stale_after, local_alive=_local_alive(holder)):
            raise WorkerNameInUse(
                f"worker name {name!r} in pool {pool_name!r} is held by a live worker (pid {holder.pid} on host "
                f"{holder.hostname}, last heartbeat {holder.last_heartbeat:%H:%M:%S} UTC); stop it, pick another "
                "--name, or leave --name out for a unique default",
                field="name",
            )
        if client.claim_worker_name(pool_name, name, instance_id=instance_id, hostname=socket.gethostname(),
                                    pid=ProcessId.current().pid, replace=holder):
            return
    raise WorkerNameInUse(f"worker name {name!r} is being taken by another worker starting now; pick another --name",
                          field="name")
