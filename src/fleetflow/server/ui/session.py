"""Who is looking at the UI: the session cookie, CSRF tokens and scope checks.

* ``POST /login`` takes an API key, checks it with the server's own
  :class:`~fleetflow.server.api.auth.Authenticator` (same rate limit on failures), and sets
  the ``fleetflow_session`` cookie to it: HttpOnly (no script reads it), SameSite=Strict (no
  other site's page sends it), Secure behind HTTPS. Every request re-authenticates the key
  (cached 5 s), so a revoked or expired key ends its sessions at once.
* Every form and htmx request carries a CSRF token: an HMAC of the session's key (or of a
  per-server random secret when auth is off), so it cannot be guessed without the key and
  needs no server-side state. Compared in constant time.
* Mutating routes call :func:`require_scope`: a ``read`` key sees no buttons, and the server
  refuses the action anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request

from ...exceptions import AuthenticationError, PermissionDenied
from ...orchestrator.keys import KEY_PREFIX, Scope
from ..api.auth import Principal, require
from ..api.context import ServerContext

COOKIE = "fleetflow_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
SESSION_SECONDS = 12 * 3600


class LoginRequired(Exception):
    """No valid session: the page redirects to /login (htmx requests get HX-Redirect)."""


@dataclass(frozen=True)
class Viewer:
    """The signed-in person: their key's principal and the CSRF token of their session."""

    principal: Principal
    csrf: str
    signed_in: bool = True  # False when the server runs without auth (nothing to log out of)

    @property
    def may_run(self) -> bool:
        """Start, cancel and retry runs (``run``, ``admin``)."""
        return self.principal.scope in (Scope.RUN, Scope.ADMIN)

    @property
    def may_admin(self) -> bool:
        """Pause and resume work pools."""
        return self.principal.scope is Scope.ADMIN

    @property
    def scope(self) -> str:
        return self.principal.scope.value if self.principal.scope else "?"


def csrf_token(secret: str) -> str:
    """The CSRF token of a session whose key (or server secret) is ``secret``."""
    return hmac.new(secret.encode(), b"fleetflow-ui-csrf", hashlib.sha256).hexdigest()


def server_secret(ctx: ServerContext) -> str:
    """A random secret per server process, for CSRF tokens when auth is off."""
    secret = getattr(ctx, "ui_secret", None)
    if secret is None:
        secret = secrets.token_urlsafe(32)
        ctx.ui_secret = secret  # type: ignore[attr-defined]
    return secret


def viewer(request: Request, ctx: ServerContext) -> Viewer:
    """The session's viewer, or raise LoginRequired."""
    if not ctx.auth:
        return Viewer(ctx.principal(request), csrf_token(server_secret(ctx)), signed_in=False)
    key = request.cookies.get(COOKIE)
    if not key or not key.startswith(KEY_PREFIX):
        raise LoginRequired()
    try:
        principal = authenticate_key(request, ctx, key)
    except AuthenticationError:
        raise LoginRequired() from None
    return Viewer(principal, csrf_token(key))


def authenticate_key(request: Request, ctx: ServerContext, key: str) -> Principal:
    """The principal of API key ``key`` (run tokens are refused: they are not for people)."""
    if not key.startswith(KEY_PREFIX):
        raise AuthenticationError("paste an API key (it starts with ffk_); create one with `fleetflow api-key create NAME`.")
    address = request.client.host if request.client else "unknown"
    principal = ctx.authenticator.authenticate(ctx.store, f"Bearer {key}", address)
    request.state.principal = principal  # the audit ledger names who acted
    return principal


async def check_csrf(request: Request, who: Viewer) -> None:
    """Refuse a mutating request whose CSRF token (form field or header) is not the session's."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent, who.csrf):
        raise PermissionDenied("the form's CSRF token is missing or stale; reload the page and try again.")


def require_scope(who: Viewer, scope: Scope, action: str) -> None:
    """The same rule the JSON API applies (a read key is refused)."""
    require(who.principal, scope, action)
