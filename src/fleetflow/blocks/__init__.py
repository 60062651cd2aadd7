"""Blocks: typed, named, persisted configuration with encrypted secrets."""

from .base import Block, block_types, get_block_class
from .secrets import MASK, SecretStr

__all__ = ["Block", "SecretStr", "MASK", "block_types", "get_block_class"]
