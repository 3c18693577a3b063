"""Process-global tuning for a process whose only work is consuming: every knob, and why.

Each knob changes the interpreter for every thread of the process, so only
the entry point of a process that runs nothing but a consumer applies them
(:func:`tune_consumer_process`): a consumer process of ``serve --consumers N``
(``ledger/entrypoints/consumer_processes.py``), ``serve --role consumer`` alone, and the
benchmark's consumer child. ``ledger serve`` with one consumer and other roles
runs the consumer as one thread beside the projection followers, the status
publisher and the scheduler: none of this is applied there, and the consumer
runs untuned (give it its own process to have it).

The knobs:

- ``sys.setswitchinterval(SWITCH_INTERVAL)``: the GIL is handed over after
  0.5 ms instead of CPython's 5 ms. The consumer thread blocks on PostgreSQL a
  dozen times per batch; while it waits, kafka-python's network thread takes
  the GIL (it parses fetch responses in Python) and, with the default
  interval, keeps it for up to 5 ms after the database has answered.
  Measured: ~10% more throughput. Only ever lowered.
- No cyclic garbage collection while a batch is in flight
  (:func:`collector_paused`, the consumer's batch scope): a batch holds tens
  of thousands of young objects (records, validated messages, dedupe rows)
  alive until it commits; the collector would scan them again and again
  (measured: ~15% of the consumer's time) only to find almost nothing, since
  nearly everything here is freed by reference counting. Collection resumes
  between batches, when the batch is garbage. The read models' batches run
  paused too in a process with no consumer thread (``Services.read_models``).
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

#: Seconds a thread may hold the GIL while another waits for it (CPython's default is 5 ms).
SWITCH_INTERVAL = 0.0005

#: What the consumer runs each poll in (``LedgerConsumer(batch_scope=...)``).
BatchScope = Callable[[], AbstractContextManager[None]]


@contextmanager
def collector_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def tune_consumer_process() -> BatchScope:
    """Apply the process-wide knobs; returns the batch scope to give the consumer."""
    if sys.getswitchinterval() > SWITCH_INTERVAL:
        sys.setswitchinterval(SWITCH_INTERVAL)
    return collector_paused
