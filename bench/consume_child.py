"""Child process of the benchmarks: the real ledger consumer, measured alone.

Timing starts at the first poll that returns records and stops when every
partition's position stored in PostgreSQL has reached the end of its topic.
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

from ledger.bootstrap import bootstrap  # noqa: E402
from ledger.logging import configure  # noqa: E402


def main() -> None:
    configure(json_lines=True, level=logging.WARNING)
    services = bootstrap()
    consumer = services.consumer()
    batches = 0
    started: float | None = None
    deadline = time.monotonic() + 900
    while True:
        outcomes = consumer.poll_once()
        if outcomes and started is None:
            started = time.perf_counter()
        batches += len(outcomes)
        if started is not None and consumer.caught_up():
            break
        if time.monotonic() > deadline:
            raise TimeoutError("consumer did not catch up")
    elapsed = time.perf_counter() - (started or time.perf_counter())
    stored = services.ledger.recorder.max_notification_id() or 0
    consumer.close()
    services.close()
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "batches": batches,
                "stored_events": stored,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
