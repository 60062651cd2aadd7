"""Grouping queued items by the client that is to store them (pure).

The log shipper and the lease keeper both hold ``(client, item)`` pairs from every run of the
process and write each client's share in one call. Nearly always there is a single client, so
that case costs one pass with no per-item allocation; several clients (tests, a process on two
stores) keep the order of first appearance."""

from __future__ import annotations

from typing import Any, Iterable, TypeVar

T = TypeVar("T")


def by_client(pairs: Iterable[tuple[Any, T]]) -> list[tuple[Any, list[T]]]:
    """``[(client, [item, ...]), ...]``: the items of each client (by identity), in order."""
    pairs = pairs if isinstance(pairs, list) else list(pairs)
    if not pairs:
        return []
    first = pairs[0][0]
    if all(client is first for client, _ in pairs):
        return [(first, [item for _, item in pairs])]
    groups: dict[int, tuple[Any, list[T]]] = {}
    for client, item in pairs:
        group = groups.get(id(client))
        if group is None:
            group = groups[id(client)] = (client, [])
        group[1].append(item)
    return list(groups.values())
