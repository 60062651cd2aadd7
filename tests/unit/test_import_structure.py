"""The package's import graph has no cycles, and the store imports nothing above it.

Every ``import`` and ``from ... import`` in every module counts, including the ones inside
functions: a lazy import still ties two modules together, it only hides the cycle until run time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import fleetflow

ROOT = Path(fleetflow.__file__).parent


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _targets(module: str, is_package: bool, node: ast.AST, modules: dict) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in modules}
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    out = set()
    for alias in node.names:  # `from pkg import sub` imports the submodule, not pkg's names
        sub = f"{target}.{alias.name}"
        out.add(sub if sub in modules else target)
    return out & set(modules)


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, (path, is_package) in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges |= _targets(name, is_package, node, modules)
        graph[name] = edges - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path ``[a, b, ..., a]``, or None (iterative DFS with colours)."""
    colour = dict.fromkeys(graph, 0)
    for start in sorted(graph):
        if colour[start]:
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        colour[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour[child] == 1:
                return path[path.index(child):] + [child]
            elif colour[child] == 0:
                colour[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(graph[child]))))
    return None


def test_find_cycle_detects_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_graph_sees_lazy_imports():
    graph = import_graph()
    # Flow.serve imports fleetflow.serve inside the method: still an edge.
    assert "fleetflow.serve" in graph["fleetflow.flows"]


def test_no_import_cycles():
    assert find_cycle(import_graph()) is None


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(graph[node])
    return False


def test_named_cycles_are_gone():
    graph = import_graph()
    # flows -> worker -> runner -> flows, and aws/ecs <-> aws/ecs_launcher (issue 11)
    assert not graph["fleetflow.flows"] & {"fleetflow.worker", "fleetflow.worker.loop", "fleetflow.deployments"}
    assert not _reaches(graph, "fleetflow.worker", "fleetflow.flows")
    assert not _reaches(graph, "fleetflow.aws.ecs_launcher", "fleetflow.aws.ecs")


def test_store_imports_nothing_above_it():
    allowed = ("fleetflow.orchestrator", "fleetflow.states", "fleetflow.exceptions", "fleetflow.settings")
    for name, edges in import_graph().items():
        if name.startswith("fleetflow.orchestrator"):
            above = sorted(e for e in edges if not e.startswith(allowed))
            assert not above, f"{name} imports {above}"
