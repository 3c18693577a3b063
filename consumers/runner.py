"""The consumer loop: Kafka records in, one PostgreSQL transaction per partition batch.

Exactly-once effect, step by step (``docs/exactly-once.md``):

1. On every partition assignment, and every few seconds after, the position
   stored in PostgreSQL is checked against the broker's log, and the
   partition read from it or held (``consumers/assignment.py``,
   ``consumers/positions.py``). The accounts topic is read first
   (``consumers/hold_back.py``).
2. Gather a partition's usage records across polls for up to ``gather_seconds``
   (``consumers/gathering.py``): nothing gathered is acknowledged, so what a
   stop or a rebalance drops is read again.
3. Decode and validate each record (pure), drop duplicates within the batch
   and those whose CloudEvent ``(source, id)`` is already in ``ledger_dedupe``
   (``consumers/batch.py``).
4. Map to commands, apply them to aggregates (one event per account and
   billing month per batch); a command that fails unexpectedly is
   dead-lettered alone (``consumers/poison.py``).
5. Publish dead letters (refused records) to the dead-letter topic and flush
   (``consumers/dead_letter.py``); park records for accounts not open yet
   (``consumers/parking.py``).
6. Commit events + tracking + dedupe keys + dead-letter rows + parked rows in
   one transaction (``consumers/applying.py``). If it collides (the position
   or a dedupe key or an aggregate version already taken: another writer got
   there first, or this consumer is stale after a rebalance), nothing is
   written: the cache is evicted and the partition rewound to the stored
   position, and the batch is redone.

A crash anywhere before step 6 commits leaves the stored position where it was,
so the records are consumed again; after it, they are never applied again.
Step 6 of batch N overlaps steps 1-4 of batch N+1, one save in flight at a
time (``consumers/pipeline.py``, where the ordering and failure rules are).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import OffsetOutOfRangeError

from commands.store import LedgerRecorder
from consumers.applying import AppliedBatch, LedgerBatches, PreparedBatch
from consumers.assignment import PartitionAssignment
from consumers.batch import BatchOutcome, TopicRoles
from consumers.dead_letter import DeadLetterPublisher
from consumers.gathering import Gathering
from consumers.group_membership import group_consumer
from consumers.hold_back import AccountsFirst
from consumers.log_probe import LogProbe
from consumers.parking import ParkedFacts
from consumers.pipeline import SavePipeline, database_worker
from consumers.positions import PartitionPosition, Positions
from consumers.process_tuning import BatchScope
from ledger.application import Ledger
from ledger.plans import Catalogue

log = structlog.get_logger(__name__)


#: Poll timeout while a save is in flight: if no records come this soon, the
#: consumer settles the save instead of idling (keeps ``drain`` prompt).
IN_FLIGHT_POLL_MS = 20


def _kafka_consumer(
    kafka_config: dict[str, Any], group_id: str, probe: LogProbe, max_records: int
) -> KafkaConsumer:
    partition_fetch_bytes = max(4 * 1024 * 1024, max_records * 512)
    return group_consumer(
        kafka_config,
        group_id,
        probe,
        # Every position is set by this consumer (seek); one outside its log
        # raises instead of being moved silently (positions are checked first).
        auto_offset_reset="none",
        max_poll_interval_ms=60000,
        # One fetch per partition should hold a whole batch (~300-500 bytes a
        # record): a poll then hands over one full-sized batch per partition.
        max_partition_fetch_bytes=partition_fetch_bytes,
        fetch_max_bytes=max(32 * 1024 * 1024, 4 * partition_fetch_bytes),
    )


class LedgerConsumer:
    def __init__(
        self,
        *,
        ledger: Ledger,
        catalogue: Catalogue,
        kafka_config: dict[str, Any],
        roles: TopicRoles,
        group_id: str,
        dead_letter_topic: str,
        max_future_skew: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_records: int = 20000,
        poll_timeout_ms: int = 200,
        on_batch: Callable[[BatchOutcome], None] | None = None,
        park_max_age: timedelta = timedelta(days=7),
        batch_scope: BatchScope = contextlib.nullcontext,
        gather_seconds: float = 0.2,
    ) -> None:
        """``batch_scope``: what each poll runs in; a consumer process's entry point
        gives the one ``consumers/process_tuning.py`` returns. ``gather_seconds``: how
        long a partition's usage records may wait to be applied together
        (``consumers/gathering.py``)."""
        self.ledger = ledger
        self.catalogue = catalogue
        self.roles = roles
        self.max_records = max_records
        self.poll_timeout_ms = poll_timeout_ms
        self.batch_scope = batch_scope
        recorder = ledger.process_recorder
        assert isinstance(recorder, LedgerRecorder), "bootstrap sets PROCESS_RECORDER_TOPIC"
        self.recorder = recorder
        probe = LogProbe(kafka_config)
        self.consumer = _kafka_consumer(kafka_config, group_id, probe, max_records)
        self.producer = KafkaProducer(**kafka_config, acks="all", linger_ms=5)
        self.positions = Positions(ledger, probe, clock)
        self.gathering = Gathering(gather_seconds, max_records)
        self.assignment = PartitionAssignment(
            self.consumer,
            ledger,
            recorder,
            self.positions,
            AccountsFirst(roles.priority),
            forget=self.gathering.forget,
        )
        self.dead_letters = DeadLetterPublisher(self.producer, dead_letter_topic)
        worker = database_worker()
        self.batches = LedgerBatches(
            ledger=ledger,
            catalogue=catalogue,
            recorder=recorder,
            roles=roles,
            assignment=self.assignment,
            dead_letters=self.dead_letters,
            worker=worker,
            clock=clock,
            max_future_skew=max_future_skew,
            on_opened=self._accounts_opened,
        )
        self.pipeline: SavePipeline[PreparedBatch, AppliedBatch] = SavePipeline(
            self.batches, worker, on_batch
        )
        self.parking = ParkedFacts(self, clock=clock, max_age=park_max_age)
        self.consumer.subscribe(roles.topics, listener=_SeekToStoredPositions(self))

    def _accounts_opened(self) -> None:
        self.parking.due = True  # facts parked for these accounts can be applied now

    # ------------------------------------------------------------------ where it stands

    def stored_position(self, tp: TopicPartition) -> int | None:
        """The last offset applied of the partition (in the log it reads now)."""
        return self.assignment.stored_position(tp)

    @property
    def positions_checked_at(self) -> float:
        """``time.monotonic()`` of the last position check."""
        return self.assignment.checked_at

    @property
    def held_partitions(self) -> dict[TopicPartition, PartitionPosition]:
        return self.assignment.held_partitions

    @property
    def accounts_current(self) -> bool:
        return self.assignment.accounts_current

    @property
    def in_flight(self) -> bool:
        """Whether a batch's save is still running (its outcome comes with a later poll)."""
        return self.pipeline.in_flight

    # ------------------------------------------------------------------ loop

    def run(self, stop: threading.Event, drain_seconds: float = 0.0) -> None:
        """Poll until ``stop`` is set; the batch in flight is always finished first.

        ``drain_seconds``: after ``stop``, keep consuming until caught up, for at
        most this long. For the embedded broker, whose log dies with it: what was
        published before the stop is then billed, not lost.
        """
        log.info("consumer_started", topics=self.roles.topics)
        try:
            while not stop.is_set():
                self.poll_once()
            if drain_seconds > 0:
                try:
                    self.drain(timeout=drain_seconds)
                    log.info("consumer_drained_before_stop")
                except TimeoutError:
                    log.error("consumer_not_drained_before_stop", seconds=drain_seconds)
        finally:
            self.close()

    def poll_once(self, *, gather: bool = True) -> list[BatchOutcome]:
        """One poll. ``gather=False`` applies every record read at once (``drain``:
        catching up, nothing is worth waiting for)."""
        with self.batch_scope():
            return self._poll_once(gather)

    def _poll_once(self, gather: bool) -> list[BatchOutcome]:
        wanted = self.assignment.to_check()
        if wanted:
            self.pipeline.settle()  # the stored positions must be final before they are compared
            self.assignment.check(wanted)
        timeout_ms = self.poll_timeout_ms
        if self.pipeline.in_flight:
            timeout_ms = min(timeout_ms, IN_FLIGHT_POLL_MS)
        gathered_for = self.gathering.wait_seconds()
        if gathered_for is not None:
            timeout_ms = min(timeout_ms, max(1, int(gathered_for * 1000)))
        try:
            polled = self.consumer.poll(timeout_ms=timeout_ms, max_records=self.max_records)
        except OffsetOutOfRangeError as exc:
            # The log no longer holds the position (e.g. retention deleted records
            # not read yet): check those partitions at once; they will be held.
            out_of_range = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
            self.assignment.recheck(out_of_range or self.consumer.assignment())
            polled = {}
        ordered = sorted(
            polled, key=lambda tp: (tp.topic not in self.roles.priority, tp.topic, tp.partition)
        )
        behind = []
        for tp in ordered:
            if not self.assignment.readable(tp):
                continue
            # kafka-python's records have the attributes a Record has: not copied.
            if tp.topic in self.roles.priority:
                self.pipeline.push(self.batches.prepare(tp, polled[tp]))  # overlaps the save
                continue
            self.gathering.add(tp, polled[tp])
            if self._more_in_log(tp, polled[tp][-1].offset):
                behind.append(tp)
        for tp, records in self.gathering.due(everything=not gather, behind=behind):
            self.pipeline.push(self.batches.prepare(tp, records))
        if not polled:
            self.pipeline.settle()  # nothing to overlap with: finish the save in flight
        self.assignment.maybe_release()
        self.parking.maybe_sweep(idle=not polled)
        return self.pipeline.take_outcomes()

    def _more_in_log(self, tp: TopicPartition, last_read: int) -> bool:
        """Whether ``tp``'s log held records past ``last_read`` at the last fetch: a
        backlog, in which records are applied as they come (the fetch's own figure,
        no broker call)."""
        highwater: int | None = self.consumer.highwater(tp)
        return highwater is not None and last_read + 1 < highwater

    def caught_up(self) -> bool:
        """No save in flight, nothing held or unchecked, and every assigned
        partition's stored position has reached the end of its log (the true
        end: see ``consumers/log_probe.py``)."""
        assigned = list(self.consumer.assignment())
        if not assigned or not self.assignment.settled or self.pipeline.in_flight:
            return False
        reading_from = {tp: self.assignment.next_offset(tp) for tp in assigned}
        bounds = self.positions.probe.bounds(assigned, reading_from)
        return all(reading_from[tp] >= end for tp, (_start, end) in bounds.items())

    def drain(self, timeout: float = 60.0) -> list[BatchOutcome]:
        """Poll until caught up (demo, tests, benchmarks); raise if the deadline passes."""
        deadline = time.monotonic() + timeout
        outcomes: list[BatchOutcome] = []
        while True:
            outcomes.extend(self.poll_once(gather=False))
            if self.caught_up():
                return outcomes
            if time.monotonic() > deadline:
                raise TimeoutError(f"consumer not caught up after {timeout}s")

    def close(self) -> None:
        try:
            self.pipeline.close()  # the batch in flight is finished, never abandoned
        finally:
            self.producer.flush()
            self.producer.close()
            self.consumer.close()
            self.positions.probe.close()
            self.ledger.close()
            log.info("consumer_stopped")


class _SeekToStoredPositions(ConsumerRebalanceListener):  # type: ignore[misc]
    """Runs on kafka-python's IO thread; each callback settles the save in flight
    first (under the pipeline's lock), while the partitions are still ours."""

    def __init__(self, owner: LedgerConsumer) -> None:
        self.owner = owner

    def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        self.owner.pipeline.settle()
        self.owner.gathering.forget(revoked)  # read again by whoever gets them
        log.info("partitions_revoked", partitions=[f"{tp.topic}:{tp.partition}" for tp in revoked])

    def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        # A save in flight must not race the check: its outcome moves the stored position.
        self.owner.pipeline.settle()
        self.owner.assignment.assigned(list(assigned))
