"""The store in this process: :class:`EmbeddedClient` over an embedded Orchestrator.

It is the store itself for every call (method lookups are delegated once and cached on the
instance, so the engine's hot path pays no wrapper cost) except where the client contract
differs from the store's:

* block documents, and deployments' inline infrastructure blocks: the client seals open
  secrets with the local key before saving and unseals them on reading one (the store only
  ever holds ciphertext; lists come masked);
* ``mint_run_token``: launches reach the same store directly, so no token is needed;
* ``close``: commits buffered task-run records and disposes the store's connection pool.

:meth:`create` turns on group commit (task-run records of this process committed together).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import sealing
from ..orchestrator.lite import open_store
from ..orchestrator.schemas import BlockDocument, Deployment
from ..settings import get_settings

if TYPE_CHECKING:
    from ..orchestrator.service import Orchestrator


class EmbeddedClient:
    """:class:`~fleetflow.client.protocol.OrchestratorAPI` on an embedded store."""

    def __init__(self, store: Orchestrator):
        self.store = store

    @classmethod
    def create(cls, url: str | None = None) -> "EmbeddedClient":
        """A client on the store at ``url`` (default: the settings' store), migrated, with
        this process's task-run records group-committed (``FLEETFLOW_GROUP_COMMIT_WINDOW``; see
        :mod:`fleetflow.orchestrator.group_commit`). The server's store commits every write."""
        store = open_store(url)  # the plain SQLite path when it can serve the URL (start-up; see its module)
        settings = get_settings()
        store.enable_group_commit(settings.group_commit_window, settings.group_commit_max_records)
        return cls(store)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "store":
            raise AttributeError(name)
        value = getattr(self.store, name)
        if callable(value):
            self.__dict__[name] = value  # next lookups skip __getattr__
        return value

    @property
    def engine(self) -> Any:
        return self.store.engine

    # ---- blocks: sealed at rest, open across the client ------------------------------------
    def save_block_document(
        self, block_type: str, name: str, data: dict[str, Any], *, schema_version: int = 1, overwrite: bool = False
    ) -> BlockDocument:
        doc = self.store.save_block_document(
            block_type, name, sealing.seal(data), schema_version=schema_version, overwrite=overwrite
        )
        return _opened(doc)

    def read_block_document(self, block_type: str, name: str) -> BlockDocument:
        return _opened(self.store.read_block_document(block_type, name))

    def read_block_documents(self, block_type: str | None = None) -> list[BlockDocument]:
        """Lists never carry secrets (masked; nothing is decrypted): load one block for them."""
        return [doc.model_copy(update={"data": sealing.mask(doc.data)}) for doc in self.store.read_block_documents(block_type)]

    # ---- deployments: an inline infrastructure block's secrets, as for blocks --------------
    def upsert_deployment(self, deployment: Deployment) -> Deployment:
        return sealing.open_deployment(self.store.upsert_deployment(sealing.seal_deployment(deployment)))

    def read_deployment(self, deployment_id: str) -> Deployment:
        return sealing.open_deployment(self.store.read_deployment(deployment_id))

    def read_deployment_by_name(self, full_name: str) -> Deployment:
        return sealing.open_deployment(self.store.read_deployment_by_name(full_name))

    def read_deployments(self, *, flow_name: str | None = None, work_pool_name: str | None = None) -> list[Deployment]:
        """Lists never carry secrets (masked): read one deployment for them."""
        found = self.store.read_deployments(flow_name=flow_name, work_pool_name=work_pool_name)
        return [sealing.mask_deployment(d) for d in found]

    # ---- launches and lifecycle ------------------------------------------------------------
    def mint_run_token(self, flow_run_id: str) -> str | None:
        return None

    def close(self) -> None:
        self.store.dispose()

    def dispose(self) -> None:
        self.store.dispose()

    def __repr__(self) -> str:
        return f"EmbeddedClient({self.store!r})"


def _opened(doc: BlockDocument) -> BlockDocument:
    return doc.model_copy(update={"data": sealing.unseal(doc.data)})
