"""API keys, per-run tokens, the audit log and request ids: the store half of server auth.

* An API key is 256 random bits (``ffk_`` + url-safe base64). Only its SHA-256 is stored; a
  presented key is looked up by its hash and the stored hash compared with
  :func:`hmac.compare_digest`, so neither the key nor timing leaks.
* A run token (``ffr_...``) is minted when a worker launches a run; it authorises only that
  run and stops working when the run is final.
* Mutating requests are written to ``audit_log`` (who, what, on what, when).
* Request ids (a retried request applied once) live in :mod:`.ledger`.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import secrets
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from ..exceptions import ConfigurationError, ObjectAlreadyExists, ObjectNotFound
from ..states import TERMINAL
from . import tables as t
from .base import StoreBase, new_id, utcnow

KEY_PREFIX, TOKEN_PREFIX = "ffk_", "ffr_"
LAST_USED_RESOLUTION = dt.timedelta(seconds=60)  # last_used is refreshed at most once a minute
# After its run is final a token may still ship the run's last log lines for this long
# (the engine flushes logs after the final state); nothing else.
RUN_TOKEN_LOG_GRACE = dt.timedelta(minutes=5)
_K, _RT, _A = t.api_keys, t.run_tokens, t.audit_log
_FINAL = [s.value for s in TERMINAL]


class Scope(str, enum.Enum):
    """What a key may do; each scope includes the ones before it except where noted."""

    READ = "read"  # GET only; secrets masked
    RUN = "run"  # read + create runs from deployments + cancel runs
    WORKER = "worker"  # read + claim, set states, write logs, read blocks with secrets
    ADMIN = "admin"  # everything


class ApiKey(BaseModel):
    """A key's record (never the key itself)."""

    model_config = ConfigDict(defer_build=True)  # built on first use: not on the path to the first task

    id: str = Field(description="UUID of the key record.")
    name: str = Field(description="Unique name, used to list and revoke it.")
    scope: Scope = Field(description="What the key may do.")
    created: dt.datetime = Field(description="When it was created.")
    expires: dt.datetime | None = Field(default=None, description="When it stops working (None: never).")
    last_used: dt.datetime | None = Field(default=None, description="Last successful use (minute resolution).")
    revoked: dt.datetime | None = Field(default=None, description="When it was revoked (None: active).")

    @property
    def active(self) -> bool:
        return self.revoked is None and (self.expires is None or self.expires > utcnow())


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)  # 32 bytes = 256 bits


def _key(row: sa.Row[Any]) -> ApiKey:
    m = row._mapping
    return ApiKey(**{name: m[name] for name in ApiKey.model_fields})


class KeysMixin(StoreBase):
    """Store operations behind ``fleetflow api-key`` and the server's authentication."""

    def create_api_key(self, name: str, scope: Scope, *, expires: dt.datetime | None = None) -> tuple[ApiKey, str]:
        scope = _scope(scope)
        secret = new_secret(KEY_PREFIX)
        values = {"id": new_id(), "name": name, "scope": scope.value, "key_hash": hash_secret(secret),
                  "created": utcnow(), "expires": expires}  # fmt: skip
        try:
            with self._write() as conn:
                row = conn.execute(_K.insert().values(values).returning(*_K.c)).one()
        except sa.exc.IntegrityError as exc:
            raise ObjectAlreadyExists(
                f"An API key named {name!r} already exists; revoke it (`fleetflow api-key revoke {name}`) or pick another name."
            ) from exc
        return _key(row), secret

    def read_api_keys(self) -> list[ApiKey]:
        with self._read() as conn:
            return [_key(r) for r in conn.execute(sa.select(_K).order_by(_K.c.created.desc(), _K.c.name))]

    def revoke_api_key(self, name: str) -> ApiKey:
        with self._write() as conn:
            row = conn.execute(
                sa.update(_K).where(_K.c.name == name).values(revoked=sa.func.coalesce(_K.c.revoked, utcnow())).returning(*_K.c)
            ).first()
        if row is None:
            names = [k.name for k in self.read_api_keys()]
            listed = ", ".join(repr(n) for n in names) or "none"
            raise ObjectNotFound(f"No API key named {name!r}; existing keys: {listed}.", kind="api key", name=name)
        return _key(row)

    def count_active_api_keys(self) -> int:
        with self._read() as conn:
            return conn.execute(sa.select(sa.func.count()).where(_K.c.revoked.is_(None))).scalar_one()

    def authenticate_api_key(self, secret: str) -> ApiKey | None:
        """The active key ``secret`` belongs to, or None (unknown, revoked or expired)."""
        digest = hash_secret(secret)
        with self._read() as conn:
            row = conn.execute(sa.select(_K).where(_K.c.key_hash == digest)).first()
        if row is None or not hmac.compare_digest(row.key_hash, digest):
            return None
        key = _key(row)
        if not key.active:
            return None
        now = utcnow()
        if key.last_used is None or now - key.last_used > LAST_USED_RESOLUTION:
            with self._write() as conn:
                conn.execute(sa.update(_K).where(_K.c.id == key.id).values(last_used=now))
        return key

    # ---- per-run tokens ---------------------------------------------------------------------
    def issue_run_token(self, flow_run_id: str) -> str:
        """A new token for ``flow_run_id`` (which must exist and not be final)."""
        run = self.read_flow_run(flow_run_id)  # type: ignore[attr-defined]
        if run.state is not None and run.state.is_final:
            raise ConfigurationError(f"flow run {flow_run_id} is already {run.state.type.value}; it needs no token.")
        secret = new_secret(TOKEN_PREFIX)
        with self._write() as conn:
            conn.execute(_RT.insert().values(token_hash=hash_secret(secret), flow_run_id=flow_run_id, created=utcnow()))
        return secret

    def authenticate_run_token(self, secret: str) -> tuple[str, bool] | None:
        """``(flow run id, ended)`` for a token of a run that is not final (``ended`` False)
        or became final less than :data:`RUN_TOKEN_LOG_GRACE` ago (``ended`` True); else None."""
        digest = hash_secret(secret)
        fr = t.flow_runs
        query = (
            sa.select(_RT.c.token_hash, _RT.c.flow_run_id, fr.c.state_type, fr.c.state_timestamp)
            .join(fr, fr.c.id == _RT.c.flow_run_id)
            .where(_RT.c.token_hash == digest)
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            return None
        if row.state_type not in _FINAL:
            return row.flow_run_id, False
        recent = row.state_timestamp is not None and utcnow() - row.state_timestamp < RUN_TOKEN_LOG_GRACE
        return (row.flow_run_id, True) if recent else None

    # ---- audit --------------------------------------------------------------
    def record_audit(self, actor: str, action: str, target: str | None, status: int | None = None) -> None:
        with self._write() as conn:
            conn.execute(_A.insert().values(timestamp=utcnow(), actor=actor, action=action, target=target, status=status))

    def read_audit(self, *, limit: int = 100) -> list[dict[str, Any]]:
        with self._read() as conn:
            rows = conn.execute(sa.select(_A).order_by(_A.c.id.desc()).limit(limit))
            return [dict(r._mapping) for r in rows]


def _scope(scope: Any) -> Scope:
    try:
        return Scope(scope)
    except ValueError:
        raise ConfigurationError(
            f"unknown API key scope {scope!r}; use one of {', '.join(s.value for s in Scope)}", field="scope"
        ) from None
