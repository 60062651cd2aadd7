"""A forked run's environment becomes exactly the one the worker computed for it, whatever
the template's was: variables only the template had are gone, changed ones changed."""

from __future__ import annotations

import os

from fleetflow.fork_template import replace_environment


def test_the_environment_becomes_the_assignments_exactly():
    saved = dict(os.environ)
    try:
        os.environ["FF_TEST_ONLY_TEMPLATE"] = "1"
        os.environ["FF_TEST_CHANGED"] = "old"
        os.environ["FF_TEST_SAME"] = "same"
        before = dict(os.environ)
        after = {k: v for k, v in before.items() if k != "FF_TEST_ONLY_TEMPLATE"}
        after.update(FF_TEST_CHANGED="new", FF_TEST_ADDED="added")
        replace_environment(before, after)
        assert dict(os.environ) == after
        assert os.getenv("FF_TEST_ONLY_TEMPLATE") is None and os.getenv("FF_TEST_CHANGED") == "new"
    finally:
        os.environ.clear()
        os.environ.update(saved)
