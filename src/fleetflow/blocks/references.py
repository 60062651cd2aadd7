"""Blocks travel between processes by reference, never by value.

A block passed as a flow parameter (``run_deployment(..., parameters={"creds": creds})``) or
returned as a result would otherwise be written as its JSON dump, where every secret field is
``'**********'`` (so the child silently got a masked secret), or pickled with its secrets in
clear. Instead a *saved* block is written as ``{"$fleetflow_block": "type-slug/name"}`` and
loaded again (secrets decrypted by the store) on the other side. An unsaved block has no
name to refer to: it is refused with the fix (save it first), before any run exists.
"""

from __future__ import annotations

from typing import Any

from .base import BLOCK_REF_KEY, Block


def block_reference(block: Block) -> dict[str, str]:
    """The reference of a saved block (TypeError for an unsaved one)."""
    return block.__fleetflow_json__()


def is_reference(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(BLOCK_REF_KEY), str)


def encode_blocks(value: Any) -> Any:
    """``value`` with every saved block inside lists, tuples and dicts replaced by its reference
    (unsaved blocks are left as they are)."""
    if isinstance(value, Block):
        return block_reference(value) if getattr(value, "_block_document_name", None) else value
    if isinstance(value, dict):
        return {k: encode_blocks(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(encode_blocks(v) for v in value)
    return value


def decode_blocks(value: Any) -> Any:
    """``value`` with every block reference loaded back as the saved block."""
    if is_reference(value):
        return Block.load(value[BLOCK_REF_KEY])
    if isinstance(value, dict):
        return {k: decode_blocks(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_blocks(v) for v in value]
    return value


def contains_reference(value: Any) -> bool:
    if is_reference(value):
        return True
    if isinstance(value, dict):
        return any(contains_reference(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_reference(v) for v in value)
    return False


def referenced_blocks(value: Any) -> set[str]:
    """Every 'type-slug/name' referenced inside ``value`` (what a run's token may read)."""
    if is_reference(value):
        return {value[BLOCK_REF_KEY]}
    if isinstance(value, dict):
        return set().union(*(referenced_blocks(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(referenced_blocks(v) for v in value)) if value else set()
    return set()
