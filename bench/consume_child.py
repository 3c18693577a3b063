"""Child process of the benchmarks: the real ledger consumer, measured alone.

Timing starts just before the Kafka poll that first returns records of the
measured topic (``BENCH_TOPIC``), as the raw drain's does: the setup messages
(the accounts the measured ones need, on their own topic) are consumed first,
and their time is reported apart (``setup_seconds``, from the first poll that
returned anything). It stops when every partition the child holds has its
position stored in PostgreSQL at the end of its topic. Several run at once in
one consumer group to measure scale-out. Prints one JSON line of figures.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


class FirstPolls:
    """Wraps the consumer's Kafka poll: when it first returned records, and when it
    first returned records of ``topic`` (the time just before each of those calls)."""

    def __init__(self, poll: Callable[..., dict[Any, list[Any]]], topic: str) -> None:
        self.poll, self.topic = poll, topic
        self.anything: float | None = None
        self.measured: float | None = None
        #: The process's CPU seconds (every thread's) when the measured topic's poll began.
        self.cpu_at_measured = 0.0

    def __call__(self, *args: Any, **kwargs: Any) -> dict[Any, list[Any]]:
        called = time.perf_counter()
        polled = self.poll(*args, **kwargs)
        if polled and self.anything is None:
            self.anything = called
        if self.measured is None and any(tp.topic == self.topic for tp in polled):
            self.measured = called
            self.cpu_at_measured = time.process_time()
        return polled


def join_group(kafka: Any, members: int) -> None:
    """Hold this member's share of the group's partitions before the clock starts.

    Members start one after another (imports, bootstrap); one that joins after the
    first generation formed makes the group rebalance mid-run, and the stall (the
    early member rejoins only between its batches) was up to a second of a 2-3 s
    measurement, in about half the runs. Joining through the coordinator fetches
    nothing, so no record is consumed before the harness releases all members.
    """
    partitions = sum(len(kafka.partitions_for_topic(t) or ()) for t in kafka.subscription())
    deadline = time.monotonic() + 120
    while kafka._coordinator.need_rejoin() or len(kafka.assignment()) != partitions // members:
        kafka._coordinator.poll(timeout_ms=200)
        if time.monotonic() > deadline:
            raise TimeoutError(f"no share of {partitions} partitions among {members} members")


def without_chain() -> None:
    """The hash chain's cost, measured: links not written (never outside a benchmark)."""
    from commands.store import LedgerRecorder

    LedgerRecorder._insert_links = lambda *_args, **_kwargs: None  # type: ignore[method-assign]


def main() -> None:
    configure(json_lines=True, level=logging.WARNING)
    if os.environ.get("BENCH_WITHOUT_CHAIN"):
        without_chain()
    batch_scope = tune_consumer_process()  # a consumer process, as serve's are
    services = bootstrap(create_tables=False)  # created by the benchmark, before
    consumer = services.consumer(batch_scope=batch_scope)
    polls = FirstPolls(consumer.consumer.poll, os.environ["BENCH_TOPIC"])
    consumer.consumer.poll = polls  # type: ignore[method-assign]
    join_group(consumer.consumer, int(os.environ["BENCH_MEMBERS"]))
    print("ready", flush=True)  # the harness releases every member at once
    sys.stdin.readline()
    batches = 0
    deadline = time.monotonic() + 900
    while True:
        outcomes = consumer.poll_once()
        batches += len(outcomes)
        # Not "caught up" before it holds partitions whose positions reached their end.
        if consumer.caught_up():
            break
        if time.monotonic() > deadline:
            raise TimeoutError("consumer did not catch up")
    ended_at = time.perf_counter()
    cpu = time.process_time() - polls.cpu_at_measured
    ended = time.time()
    # A member that was given only partitions another had finished did no work.
    started = polls.measured
    elapsed = ended_at - started if started is not None else None
    setup = started - polls.anything if started is not None and polls.anything is not None else None
    stored = services.ledger.recorder.max_notification_id() or 0
    consumer.close()
    services.close()
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "started": None if elapsed is None else ended - elapsed,
                "ended": ended,
                "setup_seconds": setup,
                "cpu_seconds": cpu if started is not None else 0.0,
                "batches": batches,
                "stored_events": stored,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


if __name__ == "__main__":
    main()
