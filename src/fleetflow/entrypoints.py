"""Loading ``'path/to/file.py:flow_function'`` entrypoints (runner, deployments, CLI).

The check that the object is a flow is structural (:class:`FlowLike`) rather than an
``isinstance(obj, Flow)``: this module sits above the flow objects in some call chains
(``flow.serve`` -> deployments -> here) and below them in others (the runner), so importing
:mod:`fleetflow.flows` here would make an import cycle.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

from .exceptions import FleetflowError


@runtime_checkable
class FlowLike(Protocol):
    """What a loaded entrypoint must offer to be run or deployed (a ``@flow`` object)."""

    name: str
    fn: Callable[..., Any]

    def parameter_schema(self) -> dict[str, Any]: ...

    def validate_parameters(self, parameters: dict[str, Any], *, partial: bool = False) -> dict[str, Any]: ...


def split_entrypoint(entrypoint: str) -> tuple[str, str]:
    """``'file.py:attr'`` -> ``('file.py', 'attr')``, or a FleetflowError with the expected form."""
    if ":" not in entrypoint:
        raise FleetflowError(f"entrypoint {entrypoint!r} must look like 'path/to/file.py:flow_function'")
    file_part, attr = entrypoint.rsplit(":", 1)
    return file_part, attr


def _module_name(path: Path, root: Path) -> str:
    # Top-level files keep their own name (pickled results refer to it); nested ones get a
    # stable, unique name so two 'flows.py' in different folders do not collide.
    if path.parent == root:
        return path.stem
    return f"fleetflow_entry_{hashlib.sha256(str(path).encode()).hexdigest()[:16]}"


def load_flow_from_entrypoint(entrypoint: str, root: Path) -> Any:
    """Import ``'path/to/file.py:function'`` relative to ``root`` and return the Flow object."""
    file_part, attr = split_entrypoint(entrypoint)
    path = (root / file_part).resolve()
    if not path.is_file():
        raise FleetflowError(f"entrypoint file {file_part!r} not found in {root}")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    module_name = _module_name(path, root)
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[module_name] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    obj = getattr(module, attr, None)
    if not isinstance(obj, FlowLike):
        raise FleetflowError(f"{entrypoint!r}: {attr!r} is not a @flow (found {type(obj).__name__})")
    return obj
