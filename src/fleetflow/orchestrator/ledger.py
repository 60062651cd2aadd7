"""The request ledger: the response of each mutating API request, so a retry is applied once.

Every mutating request of :class:`fleetflow.client.http.HTTPClient` carries a client-generated
``X-Request-Id``, the same across its retries. The server (:mod:`fleetflow.server.api.ledger`)
records the first response under a hash of (the caller's credentials, that id) and answers a
retry with it. The row is written in the request's own transaction (:meth:`record_request`,
:mod:`.request_tx`): the request's writes and its row commit together, or neither does. Kept here, in the store, rather than in the server's memory, so a retry that
reaches a *restarted* server -- it crashed after applying the request or batch, before the
client saw the answer -- is still answered from the ledger, not applied a second time.

A row holds the key's name (who asked; never the key), the status, the response body and its
SHA-256 (replays are checked against it), and when it was recorded. Rows older than
:data:`RETENTION` go, swept at most once a :data:`PRUNE_EVERY` per store: a client gives up
retrying long before (its outage buffer is bounded, see ``client/http.py``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from typing import Any

import sqlalchemy as sa

from . import tables as t
from .base import StoreBase, utcnow
from .jsoncodec import _json_default
from .request_tx import RequestTransaction

log = logging.getLogger("fleetflow.store")
RETENTION = dt.timedelta(days=1)
PRUNE_EVERY = 60.0  # seconds between two deletions of expired rows by one store
_L = t.request_ledger


def response_digest(response: Any) -> str:
    """SHA-256 of the response body as canonical JSON (sorted keys: JSONB reorders them)."""
    canonical = json.dumps(response, sort_keys=True, separators=(",", ":"), default=_json_default)
    return hashlib.sha256(canonical.encode()).hexdigest()


class LedgerMixin(StoreBase):
    """Store operations of the request ledger."""

    _ledger_pruned: float = float("-inf")

    def recall_request(self, request_key: str) -> tuple[int, Any] | None:
        """The ``(status, response body)`` recorded for ``request_key``, if it was seen (and its
        row is intact: a body that no longer matches its digest is not replayed)."""
        query = sa.select(_L.c.status, _L.c.response, _L.c.response_digest).where(_L.c.request_key == request_key)
        with self._read() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        if response_digest(row.response) != row.response_digest:
            log.warning("request ledger row %s does not match its digest; not replayed", request_key[:12])
            return None
        return row.status, row.response

    def record_request(self, tx: RequestTransaction, request_key: str, status: int, response: Any, *,
                       key_name: str | None = None, audit: tuple[str, str] | None = None) -> bool:  # fmt: skip
        """Add a request's ledger row (and its audit row, ``(action, target)``) to the request's
        own transaction ``tx``, which the caller then commits: the request's writes and the row
        are committed together or not at all (see :mod:`.request_tx`).

        False when the row was already there: an earlier attempt of the same request committed
        first (two attempts in flight at once). The caller then rolls ``tx`` back and answers
        with :meth:`recall_request`, so even concurrent attempts are applied once."""
        conn = tx.connection()
        insert = self._ledger_insert(request_key, status, response, key_name).returning(_L.c.request_key)
        if conn.execute(insert).first() is None:  # (RETURNING: psycopg's rowcount is -1 here)
            return False
        if audit is not None:
            self.record_audit(key_name or "(unauthenticated)", audit[0], audit[1], status)  # type: ignore[attr-defined]
        self._prune_ledger(conn)
        return True

    def remember_request(self, request_key: str, status: int, response: Any, *, key_name: str | None = None) -> None:
        """Record a request's outcome in a transaction of its own (the first one wins)."""
        with self._write() as conn:
            conn.execute(self._ledger_insert(request_key, status, response, key_name))
            self._prune_ledger(conn)

    def _ledger_insert(self, request_key: str, status: int, response: Any, key_name: str | None) -> Any:
        values = {"request_key": request_key, "key_name": (key_name or "")[:200] or None, "status": status,
                  "response": response, "response_digest": response_digest(response), "created": utcnow()}  # fmt: skip
        return self._insert(_L).values(values).on_conflict_do_nothing(index_elements=[_L.c.request_key])

    def _prune_ledger(self, conn: sa.Connection) -> None:
        """Now and then (at most once a :data:`PRUNE_EVERY`), forget rows past :data:`RETENTION`."""
        if time.monotonic() - self._ledger_pruned < PRUNE_EVERY:
            return
        conn.execute(sa.delete(_L).where(_L.c.created < utcnow() - RETENTION))
        self._ledger_pruned = time.monotonic()

    def count_remembered_requests(self) -> int:
        """How many responses the ledger holds (for operators and tests)."""
        with self._read() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(_L)).scalar_one()
