"""The ledger's steps of the pipeline: a partition batch in, one transaction out.

1. Prepare (consumer thread, pure, while the save before it runs): decode and
   validate each record, drop duplicates within the batch, map to commands.
   Which dedupe keys are stored already is asked on the database worker,
   behind the save in flight, so it sees that batch's keys.
2. Apply (no save in flight): drop the messages whose keys are stored (the
   commands are not mapped again), apply the commands to the aggregates (one
   event per account and billing month), poison commands taken out
   (``consumers/poison.py``).
3. Publish dead letters and flush: network I/O happens before, never inside,
   the database transaction. Records for an account not open yet are parked
   instead (``consumers/parking.py``), and re-driven when it opens.
4. Save (database worker): events + tracking + dedupe keys + dead-letter rows +
   parked rows in one transaction. If it fails, nothing is written: what the
   batch loaded is evicted and its partition rewound to the stored position.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from eventsourcing.persistence import IntegrityError, Tracking
from kafka import TopicPartition

from commands.batch_rows import DeadLetterRow
from commands.handlers import BatchWork, save_batch
from commands.models import AccountCommand
from commands.parked import ParkedRow
from commands.store import LedgerRecorder
from consumers.assignment import PartitionAssignment
from consumers.batch import BatchOutcome, DedupeKey, PartitionBatch, TopicRoles
from consumers.dead_letter import DeadLetterPublisher, dead_letter_rows
from consumers.mapping import to_commands
from consumers.messages import RecordLike
from consumers.metrics import BATCH_SECONDS, DEAD_LETTERS, MESSAGES
from consumers.parking import parked_rows
from consumers.poison import apply_isolating_poison
from ledger.application import Ledger
from ledger.opening import account_uuid
from ledger.plans import Catalogue

log = structlog.get_logger(__name__)

NOTHING_STORED: Future[set[DedupeKey]] = Future()
NOTHING_STORED.set_result(set())


@dataclass
class PreparedBatch:
    """A partition batch decoded and mapped (pure), not applied yet."""

    tp: TopicPartition
    records: Sequence[RecordLike]
    batch: PartitionBatch
    commands: list[AccountCommand]
    #: ``known_keys`` of the batch, queued behind the save in flight (if any).
    lookup: Future[set[DedupeKey]]
    started: float


@dataclass
class AppliedBatch:
    """A partition batch applied to the aggregates: what its transaction stores."""

    tp: TopicPartition
    records: Sequence[RecordLike]
    work: BatchWork
    tracking: Tracking
    dead_letters: list[DeadLetterRow]
    parked: list[ParkedRow]
    outcome: BatchOutcome
    started: float


class LedgerBatches:
    def __init__(
        self,
        *,
        ledger: Ledger,
        catalogue: Catalogue,
        recorder: LedgerRecorder,
        roles: TopicRoles,
        assignment: PartitionAssignment,
        dead_letters: DeadLetterPublisher,
        worker: ThreadPoolExecutor,
        clock: Callable[[], datetime],
        max_future_skew: timedelta,
        on_opened: Callable[[], None],
    ) -> None:
        self.ledger = ledger
        self.catalogue = catalogue
        self.recorder = recorder
        self.roles = roles
        self.assignment = assignment
        self.dead_letters = dead_letters
        self.worker = worker
        # Facts dated later than clock + skew are refused (``decode``'s ``latest_time``).
        self.clock = clock
        self.max_future_skew = max_future_skew
        #: Called after a batch that opened accounts: facts parked for them can be applied.
        self.on_opened = on_opened

    def prepare(self, tp: TopicPartition, records: Sequence[RecordLike]) -> PreparedBatch:
        started = time.perf_counter()
        latest_time = self.clock() + self.max_future_skew
        batch = PartitionBatch(records, self.roles.by_topic[tp.topic], latest_time)
        if tp.topic in self.roles.versioned:
            lookup = NOTHING_STORED  # idempotent by their own version: no dedupe keys
        else:
            lookup = self.worker.submit(self.recorder.known_keys, batch.keys)
        return PreparedBatch(tp, records, batch, to_commands(batch.accepted), lookup, started)

    def work_for(self, prepared: PreparedBatch) -> BatchWork:
        """Drop the stored duplicates, then apply (a batch, or a re-drive of parked facts)."""
        commands = prepared.batch.drop_known(prepared.commands, prepared.lookup.result())
        tp = prepared.tp
        return apply_isolating_poison(
            self.ledger, self.catalogue, commands, topic=tp.topic, partition=tp.partition
        )

    # ------------------------------------------------------------------ BatchSteps

    def apply(self, prepared: PreparedBatch) -> AppliedBatch:
        """Apply, and publish the dead letters (flushed before the transaction starts)."""
        tp, records, batch = prepared.tp, prepared.records, prepared.batch
        work = self.work_for(prepared)
        dead = dead_letter_rows(records, batch.refused, work.rejections)
        parked = parked_rows(records, work.parkings)
        if work.opened:
            self.on_opened()
        self.dead_letters.publish(dead)
        outcome = BatchOutcome(
            records=len(records),
            applied=work.applied_messages,
            duplicates=batch.duplicates,
            dead_letters=len(dead),
            parked=len(parked),
            accounts=len(work.accounts),
            topic=tp.topic,
            partition=tp.partition,
            first_offset=records[0].offset,
            last_offset=records[-1].offset,
        )
        tracking = Tracking(self.assignment.tracking_name(tp), records[-1].offset)
        return AppliedBatch(tp, records, work, tracking, dead, parked, outcome, prepared.started)

    def save(self, applied: AppliedBatch) -> None:
        save_batch(applied.work, applied.tracking, applied.dead_letters, applied.parked)

    def committed(self, applied: AppliedBatch) -> BatchOutcome:
        tp, records, outcome = applied.tp, applied.records, applied.outcome
        elapsed = time.perf_counter() - applied.started
        BATCH_SECONDS.labels(tp.topic).observe(elapsed)
        MESSAGES.labels(tp.topic, "applied").inc(outcome.applied)
        MESSAGES.labels(tp.topic, "duplicate").inc(outcome.duplicates)
        MESSAGES.labels(tp.topic, "dead_letter").inc(outcome.dead_letters)
        MESSAGES.labels(tp.topic, "parked").inc(outcome.parked)
        DEAD_LETTERS.labels(tp.topic).inc(outcome.dead_letters)
        log.info(
            "batch_committed",
            topic=tp.topic,
            partition=tp.partition,
            first_offset=records[0].offset,
            last_offset=records[-1].offset,
            records=outcome.records,
            applied=outcome.applied,
            duplicates=outcome.duplicates,
            dead_letters=outcome.dead_letters,
            parked=outcome.parked,
            accounts=sorted(applied.work.accounts)[:20],
            account_count=outcome.accounts,
            ms=round(elapsed * 1000, 1),
        )
        return outcome

    def failed(self, applied: AppliedBatch, error: Exception) -> BatchOutcome:
        tp, outcome = applied.tp, applied.outcome
        self.ledger.evict([account_uuid(a) for a in applied.work.accounts])
        where = {
            "topic": tp.topic,
            "partition": tp.partition,
            "first_offset": applied.records[0].offset,
            "resume_after": self.assignment.rewind(tp),
        }
        text = str(error).splitlines()[0]
        if isinstance(error, IntegrityError):
            # Expected and handled: another writer (a closer, a consumer that took the
            # partition over) saved first. The constraint it hit is a detail.
            log.warning("redoing_batch_after_concurrent_write", **where)
            log.debug("concurrent_write_detail", **where, error=text)
        else:  # a lock timeout, or the database going away: worth the error text
            log.warning("redoing_batch_after_database_error", **where, error=text)
        outcome.nothing_stored()
        return outcome

    def discarded(self, prepared: PreparedBatch) -> BatchOutcome:
        tp, records = prepared.tp, prepared.records
        log.warning(
            "prepared_batch_discarded",
            topic=tp.topic,
            partition=tp.partition,
            first_offset=records[0].offset,
            resume_after=self.assignment.rewind(tp),
        )
        return BatchOutcome(
            records=len(records),
            redo=True,
            discarded=True,
            topic=tp.topic,
            partition=tp.partition,
            first_offset=records[0].offset,
            last_offset=records[-1].offset,
        )
