"""State-change hooks (``on_completion``, ``on_failure``, ``on_cancellation``, ``on_crashed``)
and run-name templates, shared by the flow and task engines."""

from __future__ import annotations

from typing import Any, Callable, Iterable

from ..exceptions import ConfigurationError


def run_hooks(hooks: Iterable[Callable[..., Any]], owner: Any, run: Any, state: Any, logger: Any) -> None:
    """Call each hook as ``hook(owner, run, state)``; a failing hook is logged, never raised
    (a hook must not change the run's outcome, as in Prefect)."""
    for hook in hooks or ():
        name = getattr(hook, "__name__", repr(hook))
        try:
            logger.info(f"Running hook {name!r} in response to entering state {state.name!r}")
            hook(owner, run, state)
        except Exception as exc:
            logger.error(f"An error was encountered while running hook {name!r}: {type(exc).__name__}: {exc}")
        else:
            logger.info(f"Hook {name!r} finished running successfully")


def render_run_name(template: Any, parameters: dict[str, Any], what: str) -> str:
    """``flow_run_name=``/``task_run_name=``: a ``str.format`` template over the parameters,
    or a callable taking no arguments."""
    if callable(template):
        return str(template())
    try:
        return str(template).format(**parameters)
    except (KeyError, IndexError) as exc:
        raise ConfigurationError(
            f"{what} {template!r} names {exc} which is not a parameter; use one of: {', '.join(parameters) or 'none'}",
            field=what,
        ) from None


def check_hooks(hooks: Any, what: str) -> list[Callable[..., Any]]:
    hooks = list(hooks or [])
    for hook in hooks:
        if not callable(hook):
            raise ConfigurationError(f"{what} must be a list of callables, got {hook!r}", field=what)
    return hooks
