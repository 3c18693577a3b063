"""Child process of the benchmarks: the real ledger consumer, measured alone.

Timing starts at the first poll that returns records (just before that
``poll_once`` call, which may return before its batch's save has finished:
the consumer pipelines the save with the next poll) and stops when every
partition it holds has its position stored in PostgreSQL at the end of its
topic. Several run at once in one consumer group to measure scale-out.
Prints one JSON line of figures.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consumers.process_tuning import tune_consumer_process
from ledger.entrypoints.bootstrap import bootstrap
from ledger.entrypoints.logs import configure


def peak_rss_mb() -> float:
    """This process's own peak resident memory.

    Not ``ru_maxrss`` alone: on Linux, ``exec`` carries the parent's high-water
    mark over into the child's, so the benchmark's parent (holding every message
    it published) would be reported as the consumer's peak. ``VmHWM`` is the
    peak of this process's own address space.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    configure(json_lines=True, level=logging.WARNING)
    batch_scope = tune_consumer_process()  # a consumer process, as serve's are
    services = bootstrap(create_tables=False)  # created by the benchmark, before
    consumer = services.consumer(batch_scope=batch_scope)
    batches = 0
    started: float | None = None
    deadline = time.monotonic() + 900
    while True:
        called = time.perf_counter()
        outcomes = consumer.poll_once()
        if started is None and (outcomes or getattr(consumer, "in_flight", False)):
            started = called
        batches += len(outcomes)
        # Not "caught up" before it holds partitions whose positions reached their end.
        if consumer.caught_up():
            break
        if time.monotonic() > deadline:
            raise TimeoutError("consumer did not catch up")
    ended_at = time.perf_counter()
    ended = time.time()
    # A member that was given only partitions another had finished did no work.
    elapsed = ended_at - started if started is not None else None
    stored = services.ledger.recorder.max_notification_id() or 0
    consumer.close()
    services.close()
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "started": None if elapsed is None else ended - elapsed,
                "ended": ended,
                "batches": batches,
                "stored_events": stored,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


if __name__ == "__main__":
    main()
