"""What each flow run used, what it cost, and the size it should have had.

* :mod:`.model` -- the ``usage`` record stored on a flow run (every number names its source);
* :mod:`.sampler` / :mod:`.sources` -- measuring in the runner (cgroup v2, ECS task metadata,
  getrusage and /proc), with a background thread;
* :mod:`.recorder` -- the runner's hook: start measuring, and at the final state write the
  record, log warnings and add them to the state message;
* :mod:`.pricing` -- Fargate / EC2 / local prices and the pure cost formula;
* :mod:`.rollup` -- cost per run, over a parent's tree, per deployment over a window;
* :mod:`.recommend` -- right-sizing from past runs (pure), :mod:`.advice` reads the runs;
* :mod:`.display` -- the short texts the CLI and the UI show.
"""

from __future__ import annotations

from .model import Measured, Platform, RunUsage

__all__ = ["Measured", "Platform", "RunUsage"]
