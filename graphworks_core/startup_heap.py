"""Keep the collector's full passes off the heap a process builds at start.

A worker imports msgraph-sdk (some 77,000 tracked objects); a full collection scanned all of them:
40 ms on an idle machine, 50-100 ms on a busy one. In a worker that stall made a paced send late
enough to be answered 429 (bench/limits_chat.py); in the webhook receiver it is a p99 outlier.
Moving what is alive after start-up to the permanent generation (gc.freeze) leaves full passes
only the objects made since.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger("graphworks.startup")


def freeze_startup_heap() -> int:
    """Move every object alive now out of the collector's reach; returns how many were moved.

    Call once, after imports and warm-up: later garbage is collected as usual, but a full
    collection no longer walks the modules loaded at start.
    """
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.debug("froze %d startup objects out of the collector's full passes", frozen)
    return frozen
