"""Tracebacks that show the user's code only.

A failure inside a task passes through the engine, tenacity and ``concurrent.futures``; those
frames say nothing to the person who wrote the task. :func:`user_traceback` drops them, for
the run log line and for the exception a top-level flow call raises.
"""

from __future__ import annotations

import importlib.util
import os
import traceback
from types import TracebackType

import fleetflow


def _package_root(name: str) -> str | None:
    # Located without importing it: tenacity (and asyncio under it) is loaded only by
    # retrying tasks, not on every flow's start-up path.
    spec = importlib.util.find_spec(name)
    origin = spec.origin if spec else None
    return os.path.dirname(os.path.abspath(origin)) + os.sep if origin else None


_HIDDEN_ROOTS = tuple(
    root for root in (_package_root("fleetflow"), _package_root("tenacity")) if root
) + (os.path.dirname(os.path.abspath(traceback.__file__)) + os.sep + "concurrent" + os.sep,
     os.path.abspath(traceback.__file__).rsplit(os.sep, 1)[0] + os.sep + "contextlib.py",
     os.path.abspath(traceback.__file__).rsplit(os.sep, 1)[0] + os.sep + "threading.py")
_LOGGED = "__fleetflow_logged__"


def _hidden(tb: TracebackType) -> bool:
    return os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(_HIDDEN_ROOTS)


def strip_engine_frames(tb: TracebackType | None) -> TracebackType | None:
    """The traceback chain without fleetflow/tenacity/concurrent.futures frames (all of it
    when every frame is internal, so an engine bug still shows where it happened)."""
    frames = []
    cursor = tb
    while cursor is not None:
        if not _hidden(cursor):
            frames.append(cursor)
        cursor = cursor.tb_next
    if not frames:
        return tb
    for current, following in zip(frames, frames[1:] + [None]):
        current.tb_next = following
    return frames[0]


def user_traceback(exc: BaseException) -> str:
    """``Traceback (most recent call last): ...`` with the user's frames only."""
    exc.__traceback__ = strip_engine_frames(exc.__traceback__)
    if exc.__traceback__ is not None and _hidden(exc.__traceback__):  # raised by fleetflow itself
        return "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()


def mark_logged(exc: BaseException) -> None:
    """Remember that this exception's traceback is already in the run logs (log it once)."""
    try:
        setattr(exc, _LOGGED, True)
    except Exception:  # exceptions with __slots__
        pass


def already_logged(exc: BaseException) -> bool:
    return bool(getattr(exc, _LOGGED, False))
