"""Who is calling, and what they may do.

Credentials come as ``Authorization: Bearer <secret>``: an API key (``ffk_...``, with a
scope) or a per-run token (``ffr_...``, for one flow run while it is not final). Failed
authentications are counted per client address (distinct wrong secrets) and answered
with HTTP 429 past a limit.

Decisions here are pure functions of the :class:`Principal` and the request's target, so
they are tested without HTTP.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any

from ...exceptions import AuthenticationError, PermissionDenied, RateLimited
from ...orchestrator.keys import KEY_PREFIX, TOKEN_PREFIX, ApiKey, Scope

KEY_CACHE_SECONDS = 5.0  # a validated key is trusted this long without a store read


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: a key (``scope``) or a run token (``flow_run_id``)."""

    name: str
    scope: Scope | None = None
    flow_run_id: str | None = None
    ended: bool = False  # a run token whose run is final: it may only ship the last logs

    @property
    def is_run_token(self) -> bool:
        return self.flow_run_id is not None

    def may(self, scope: Scope) -> bool:
        """Whether a key of this principal's scope may do what ``scope`` allows."""
        if self.scope is None:
            return False
        if self.scope is Scope.ADMIN:
            return True
        if scope is Scope.READ:
            return True
        return self.scope is scope

    def sees_secrets(self) -> bool:
        return self.scope in (Scope.WORKER, Scope.ADMIN)


ANONYMOUS_ADMIN = Principal(name="(auth disabled)", scope=Scope.ADMIN)


ENDED = ("the run token's flow run has ended: tokens stop working when the run is final "
         "(only the run's last log lines are still accepted).")  # fmt: skip


def require(principal: Principal, scope: Scope, action: str) -> None:
    """Raise PermissionDenied unless ``principal`` (a key) may act with ``scope``."""
    if principal.ended:
        raise AuthenticationError(ENDED)
    if principal.is_run_token or not principal.may(scope):
        what = "a run token" if principal.is_run_token else f"a {principal.scope.value if principal.scope else '?'} key"
        raise PermissionDenied(
            f"{action} needs a {scope.value} (or admin) key; this request used {what} ({principal.name!r}). "
            f"Create one with `fleetflow api-key create NAME --scope {scope.value}`."
        )


def require_run(principal: Principal, flow_run_id: str, action: str, *, scope: Scope = Scope.WORKER) -> None:
    """A run token may act on its own run; a key needs ``scope``."""
    if principal.is_run_token:
        if principal.flow_run_id != flow_run_id:
            raise PermissionDenied(
                f"{action}: this run token belongs to flow run {principal.flow_run_id}, not {flow_run_id}."
            )
        return
    require(principal, scope, action)


class FailureLimiter:
    """At most ``limit`` different wrong secrets per client address per ``window`` seconds.

    What is counted is distinct secrets, not requests: guessing needs a new secret each try,
    while a client left with a revoked key (a worker polling, a run's log shipper after its
    run ended) repeats one. Counting its requests would let that one stale client lock every
    caller behind the same address (an office NAT, a reverse proxy) out of the server. The
    secrets are kept only as short hashes.
    """

    def __init__(self, limit: int = 20, window: float = 60.0):
        self.limit, self.window = limit, window
        self._failures: dict[str, dict[bytes, float]] = {}  # address -> {secret hash: last failure}
        self._lock = threading.Lock()

    def check(self, address: str) -> None:
        with self._lock:
            recent = self._recent(address)
        if len(recent) >= self.limit:
            raise RateLimited(
                f"too many failed authentications from {address}; wait {self.window:.0f} s and retry with a valid key."
            )

    def reset(self) -> None:
        """Forget every counted failure."""
        with self._lock:
            self._failures.clear()

    def failed(self, address: str, secret: str | None) -> None:
        """Count a failed authentication of ``secret`` (None: no credentials sent)."""
        digest = hashlib.sha256((secret or "").encode()).digest()[:12]
        with self._lock:
            self._recent(address)[digest] = time.monotonic()

    def _recent(self, address: str) -> dict[bytes, float]:
        cutoff = time.monotonic() - self.window
        kept = {digest: at for digest, at in self._failures.get(address, {}).items() if at > cutoff}
        self._failures[address] = kept
        return kept


class Authenticator:
    """Turns a bearer secret into a :class:`Principal` using the store (with a short cache)."""

    def __init__(self, limiter: FailureLimiter | None = None):
        self.limiter = limiter or FailureLimiter()
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Drop cached keys (after a revocation, or when the store changes)."""
        with self._lock:
            self._cache.clear()

    def authenticate(self, store: Any, header: str | None, address: str) -> Principal:
        self.limiter.check(address)
        secret = _bearer(header)
        cached = self._cached(secret) if secret else None
        if cached is not None:
            return cached
        principal = self._lookup(store, secret) if secret else None
        if principal is None:
            self.limiter.failed(address, secret)
            raise AuthenticationError(_why(secret))
        if not principal.is_run_token:
            with self._lock:
                self._cache[secret] = (time.monotonic() + KEY_CACHE_SECONDS, principal)  # type: ignore[index]
        return principal

    def _cached(self, secret: str) -> Principal | None:
        with self._lock:
            hit = self._cache.get(secret)
        return hit[1] if hit and hit[0] > time.monotonic() else None

    @staticmethod
    def _lookup(store: Any, secret: str) -> Principal | None:
        if secret.startswith(TOKEN_PREFIX):
            found = store.authenticate_run_token(secret)
            return Principal(name=f"run:{found[0]}", flow_run_id=found[0], ended=found[1]) if found else None
        if secret.startswith(KEY_PREFIX):
            key: ApiKey | None = store.authenticate_api_key(secret)
            return Principal(name=key.name, scope=key.scope) if key else None
        return None


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    kind, _, value = header.partition(" ")
    return value.strip() if kind.lower() == "bearer" and value.strip() else None


def _why(secret: str | None) -> str:
    if secret is None:
        return ("this server needs an API key: set FLEETFLOW_API_KEY (or run `fleetflow login --url URL --key KEY`); "
                "an admin creates keys with `fleetflow api-key create NAME --scope run`.")  # fmt: skip
    if secret.startswith(TOKEN_PREFIX):
        return "the run token is unknown, or its flow run has ended (tokens stop working when the run is final)."
    return "the API key is unknown, revoked or expired; ask an admin for a new one (`fleetflow api-key ls` shows expiry)."
