"""`graphworks` command line: workers, enqueueing, the dead-letter store, stats, graphsim, the demo."""

from __future__ import annotations

from graphworks.cli.main import main

__all__ = ["main"]
