"""Help metavars that read like Prefect's (and click's classic ones): ``TEXT``, ``INTEGER``,
``FLOAT``, ``PATH``; flags show none. Typer 0.29 renders ``<str>``/``<list[str]>`` instead."""

from __future__ import annotations

from typing import Any, get_args, get_origin

_NAMES = {str: "TEXT", int: "INTEGER", float: "FLOAT", bool: "BOOLEAN"}


def _label(annotation: Any) -> str | None:
    if get_origin(annotation) is list:
        args = get_args(annotation)
        return _label(args[0]) if args else "TEXT"
    if annotation in _NAMES:
        return _NAMES[annotation]
    name = getattr(annotation, "__name__", "")
    if name.endswith("Path"):
        return "PATH"
    if name == "datetime":
        return "DATETIME"
    return None


def apply_metavars(command: Any) -> Any:
    """Set a classic metavar on every option/argument of ``command`` (and its sub-commands)
    that has none of its own. Returns ``command``."""
    for sub in getattr(command, "commands", {}).values():
        apply_metavars(sub)
    for param in [*getattr(command, "params", []), _help_option(command)]:
        if param is None or param.metavar is not None:
            continue
        if getattr(param, "is_flag", False):
            param.metavar = ""
            continue
        descriptor = getattr(param, "type_descriptor", None)
        label = None if descriptor is None or descriptor.is_choice else _label(descriptor.annotation)
        if param.param_type_name == "argument":
            param.metavar = param.name.upper()
            if label:  # the type column of an argument ignores metavar: give it the label
                param.display_type_rich = lambda ctx, label=label: label
        elif label:
            param.metavar = label
    return command


def _help_option(command: Any) -> Any:
    """The command's cached ``--help`` option (created here so it can get a metavar too)."""
    getter = getattr(command, "get_help_option", None)
    if getter is None:
        return None
    try:
        from typer import _click  # typer >= 0.29 vendors click here
    except ImportError:
        import click as _click
    return getter(_click.Context(command))
