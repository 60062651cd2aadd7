"""Queued items grouped by the client that stores them (fleetflow/engine/grouping.py)."""

from fleetflow.engine.grouping import by_client


class Client:
    """Two clients that compare equal must still be told apart: grouping is by identity."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Client)

    __hash__ = object.__hash__


def test_one_client_gets_every_item_in_order():
    a = Client()
    assert by_client([(a, 1), (a, 2), (a, 3)]) == [(a, [1, 2, 3])]
    assert by_client([]) == []


def test_several_clients_keep_their_items_apart_in_order_of_first_appearance():
    a, b = Client(), Client()
    groups = by_client(iter([(a, "x"), (b, "y"), (a, "z")]))
    assert [(client is a, items) for client, items in groups] == [(True, ["x", "z"]), (False, ["y"])]
