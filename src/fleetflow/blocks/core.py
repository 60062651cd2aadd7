"""Prefect-compatible ``prefect.blocks.core``: the ``Block`` base class for custom blocks.

    class Database(Block):
        host: str
        password: SecretStr
        credentials: AwsCredentials          # blocks nest: saved inline, secrets encrypted

    Database(host="db", password="x", credentials=...).save("prod")
    Database.load("prod")
"""

from .base import Block, block_types, get_block_class

__all__ = ["Block", "block_types", "get_block_class"]
