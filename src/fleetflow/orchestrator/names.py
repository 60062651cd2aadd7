"""Names of flows, deployments, pools, work queues and blocks: checked before anything is stored.

A name that cannot be addressed later must be refused now: ``'flow/deployment'`` uses ``/``
as the separator, so a flow named ``team/etl`` would deploy and then never run; newlines and
control characters break CLI output and logs; every name lives in a 200-character column.
"""

from __future__ import annotations

import random
import unicodedata

from ..exceptions import InvalidNameError

MAX_NAME_LENGTH = 100
KINDS = ("flow", "deployment", "work pool", "work queue", "block")


def name_problem(value: object) -> str | None:
    """Why ``value`` is not a valid name, or None (pure)."""
    if not isinstance(value, str) or not value.strip():
        return "it is empty"
    if len(value) > MAX_NAME_LENGTH:
        return f"it has {len(value)} characters (at most {MAX_NAME_LENGTH})"
    if "/" in value:
        return "it contains '/', which separates 'flow-name/deployment-name' and 'block-type/block-name'"
    bad = [c for c in value if unicodedata.category(c).startswith("C")]
    if bad:
        return f"it contains control character(s) {', '.join(repr(c) for c in bad[:3])} (newlines, tabs, ...)"
    if value != value.strip():
        return "it starts or ends with whitespace"
    return None


def check_name(kind: str, value: object, *, field: str = "name") -> str:
    """Return ``value`` or raise InvalidNameError saying what is wrong and how to fix it."""
    problem = name_problem(value)
    if problem is None:
        return value  # type: ignore[return-value]
    suggestion = _suggest(value)
    fix = f"; e.g. {suggestion!r}" if suggestion else ""
    raise InvalidNameError(
        f"invalid {kind} name {value!r}: {problem}. Use 1-{MAX_NAME_LENGTH} printable characters without '/'"
        f"{fix}" + (f" (pass name={suggestion!r} to @flow)" if kind == "flow" and suggestion else ""),
        field=field,
    )


def _suggest(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    cleaned = "".join(c for c in value.replace("/", "-") if not unicodedata.category(c).startswith("C")).strip()
    return cleaned[:MAX_NAME_LENGTH] or None


_ADJECTIVES = "amber brave calm daring eager fuzzy gentle hasty icy jolly keen lively mellow nimble proud quiet rapid sly tidy vivid witty zesty".split()
_ANIMALS = "badger bison crane dingo eagle ferret gecko heron ibis jackal koala lemur marten newt otter panda quail raven stoat tapir urchin vole walrus yak".split()


def run_name() -> str:
    """A flow run's default name, e.g. ``brave-otter``."""
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_ANIMALS)}"
