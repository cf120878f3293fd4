"""Python's cyclic garbage collector, tuned for long-lived servers (the API and the worker).

At its default thresholds the collector ran every 700 allocations and walked everything the
process had loaded: half of a worker's CPU in a 20,000-member send, and tens of milliseconds at
the tail of every API endpoint's latency (py-spy, both). Reference counting still frees nearly
everything at once; the collector is only for cycles, which these processes make few of.
"""

from __future__ import annotations

import gc

# Allocations between young collections (default 700). Measured with
# `python bench/delivery.py --phases unlimited --quick`: one worker 1,525 → 3,054 messages/s.
YOUNG_THRESHOLD = 50_000


def settle_collector() -> None:
    """Call once start-up is done: what is loaded by then (modules, schemas, the app) lives as
    long as the process, so it is frozen out of the collector's sight, and the collector runs
    every ``YOUNG_THRESHOLD`` allocations instead of 700."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 20, 20)
