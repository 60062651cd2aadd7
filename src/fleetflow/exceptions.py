"""One exception root for everything fleetflow raises on purpose.

Every error a user can act on is a subclass of :class:`FleetflowError` with a message that
says what is wrong *and how to fix it*. Structured attributes (``field``, ``name`` ...)
let programs react without parsing messages. Errors from AWS keep the botocore error as
``__cause__``.

Every class carries a stable ``code`` (snake case of its name unless set explicitly; a test
pins them) and the HTTP status the server answers it with. The server sends
:func:`error_payload`; the HTTP client re-raises :func:`error_from_payload`, so user code
sees the same exception class whether it runs embedded or over HTTP. (``AwsError`` instances
keep botocore's error code in ``.code``; its stable code is ``type(err).code``.)
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

_BY_CODE: dict[str, type["FleetflowError"]] = {}
_JSON_SCALARS = (str, int, float, bool, type(None))


class FleetflowError(Exception):
    """Root of every error fleetflow raises deliberately."""

    code: ClassVar[str] = "fleetflow_error"
    http_status: ClassVar[int] = 400

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" not in cls.__dict__:
            cls.code = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", cls.__name__).lower()
        _BY_CODE.setdefault(cls.code, cls)


_BY_CODE[FleetflowError.code] = FleetflowError


def error_class(code: str) -> type[FleetflowError]:
    """The class with that stable code (FleetflowError for codes this version does not know)."""
    return _BY_CODE.get(code, FleetflowError)


def error_codes() -> dict[str, type[FleetflowError]]:
    """Every known code and its class."""
    return dict(_BY_CODE)


def error_payload(exc: FleetflowError) -> dict[str, Any]:
    """JSON for an error crossing HTTP: stable code, message and the JSON-able attributes."""
    attrs = {k: v for k, v in vars(exc).items() if not k.startswith("_") and isinstance(v, _JSON_SCALARS)}
    return {"code": type(exc).code, "message": str(exc), "attrs": attrs}


def error_from_payload(payload: dict[str, Any]) -> FleetflowError:
    """The exception an :func:`error_payload` describes, as its own class."""
    cls = error_class(str(payload.get("code", "")))
    exc = cls.__new__(cls)
    Exception.__init__(exc, str(payload.get("message", "")))
    exc.__dict__.update(payload.get("attrs") or {})
    return exc


# --- configuration and input -------------------------------------------------------------
class ConfigurationError(FleetflowError):
    """A setting, block field or override is invalid. ``field`` names the culprit."""

    http_status: ClassVar[int] = 422

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


class ParameterValidationError(ConfigurationError):
    """Flow parameters do not match the flow's signature or type hints."""


class InvalidOverrideError(ConfigurationError):
    """An ``infra_overrides`` key or value does not fit the infrastructure block."""


class InvalidNameError(ConfigurationError):
    """A deployment, block or pool name is malformed."""


# --- state store ---------------------------------------------------------------------------
class ObjectNotFound(FleetflowError):
    """A run, block, deployment or pool does not exist."""

    http_status: ClassVar[int] = 404

    def __init__(self, message: str, *, kind: str = "", name: str = ""):
        super().__init__(message)
        self.kind = kind
        self.name = name


class ObjectAlreadyExists(FleetflowError):
    """Saving under a name that is taken, without ``overwrite=True``."""

    http_status: ClassVar[int] = 409


class InvalidStateTransition(FleetflowError):
    """A run was asked to move to a state its current state does not allow."""

    http_status: ClassVar[int] = 409

    def __init__(self, message: str, *, current: str = "", proposed: str = ""):
        super().__init__(message)
        self.current = current
        self.proposed = proposed


# --- blocks --------------------------------------------------------------------------------
class BlockError(FleetflowError):
    """A block could not be saved, loaded or decoded."""


class BlockNotFound(ObjectNotFound, BlockError):
    """No block saved under that name."""


class BlockAlreadyExists(ObjectAlreadyExists, BlockError):
    """A block of that type and name exists and ``overwrite`` was not set."""


class BlockValidationError(ConfigurationError, BlockError):
    """A block's fields are invalid."""


# --- running -------------------------------------------------------------------------------
class RunFailed(FleetflowError):
    """Raised when reading the result of a run that ended FAILED or CRASHED."""

    def __init__(self, message: str, *, run_id: Any = None, state: Any = None):
        super().__init__(message)
        self.run_id = run_id
        self.state = state


class RunCancelled(FleetflowError):
    """The run was cancelled (by a user, a parent, or a signal)."""


class RunTimeout(FleetflowError):
    """A flow or task exceeded ``timeout_seconds``."""


class MissingResult(FleetflowError):
    """A run has no persisted result (it did not complete, or persisted nothing)."""


# --- bundles -------------------------------------------------------------------------------
class BundleError(FleetflowError):
    """A code bundle could not be built, stored or fetched."""


class UnsafeBundleError(BundleError):
    """An archive member would escape its destination or is not a plain file/dir."""


class BundleDigestMismatch(BundleError):
    """Fetched bytes do not hash to the digest the deployment recorded."""


class BundleTooLarge(BundleError):
    """An archive exceeds the size or member-count bound."""


# --- infrastructure ------------------------------------------------------------------------
class InfrastructureError(FleetflowError):
    """Launching, watching or stopping a run's infrastructure failed."""


class LaunchError(InfrastructureError):
    """The infrastructure refused to start the run."""


class AwsError(InfrastructureError):
    """An AWS call failed; ``__cause__`` holds the botocore error."""

    def __init__(self, message: str, *, operation: str = "", code: str = ""):
        super().__init__(message)
        self.operation = operation
        self.code = code


class ECSConfigError(ConfigurationError):
    """An ECSTask block (after overrides) would produce an invalid ECS request."""


class FargateSizeError(ECSConfigError):
    """The cpu/memory pair is not a valid Fargate size."""


class TaskCustomizationError(ECSConfigError):
    """``task_customizations`` is not a valid JSON patch or does not apply cleanly."""


class OverridesTooLargeError(ECSConfigError):
    """RunTask ``overrides`` exceed AWS's 8192-character limit."""


class RunTaskFailure(LaunchError):
    """RunTask returned ``failures[]`` (e.g. RESOURCE:MEMORY) instead of a task."""


class UpstreamTaskError(FleetflowError):
    """A task did not run because a task it waits for (``wait_for=`` or an argument) did not
    complete; wrap the upstream in ``allow_failure(...)`` to run anyway."""


class TaskOutsideFlowError(FleetflowError, RuntimeError):
    """A task was called outside a flow (Prefect raises a RuntimeError here too)."""


class PausedRunTimeout(FleetflowError):
    """A paused flow run was not resumed within its ``timeout``."""


class StaleLaunch(FleetflowError):
    """A runner's launch attempt is not the run's current one (or the run already started):
    it exits without running user code. Another attempt owns the run."""


class WorkerNameInUse(ConfigurationError):
    """A worker name is held by another live worker (fresh heartbeat)."""


# --- server and HTTP -----------------------------------------------------------------------
class AuthenticationError(FleetflowError):
    """No credentials, or a key/token the server does not accept (unknown, revoked, expired)."""

    http_status: ClassVar[int] = 401


class PermissionDenied(FleetflowError):
    """The key's scope (or the run token's run) does not allow this request."""

    http_status: ClassVar[int] = 403


class RateLimited(FleetflowError):
    """Too many failed authentications from this address; wait and retry with a valid key."""

    http_status: ClassVar[int] = 429


class StoreBusy(FleetflowError):
    """The store refused a request for now (a deadlock or serialization conflict with
    another request, or a lock it waited for too long): nothing of it was applied, and the
    same request can be sent again. The HTTP client retries it, like any 503."""

    http_status: ClassVar[int] = 503


class ServerUnavailable(FleetflowError):
    """The fleetflow server could not be reached (or kept answering 502/503/504) within the
    retry budget."""

    http_status: ClassVar[int] = 503
