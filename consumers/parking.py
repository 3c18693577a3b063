"""Facts that arrive before their account: parked, then re-driven when it opens.

Kafka orders the records of one partition, never those of two topics: an
``email.sent`` or a ``contact.changed`` is published seconds before the
panel's ``account.opened`` every day. So a command for an account that does
not exist yet is not refused: the consumer parks its records in
``ledger_parked`` in the batch's own transaction (``commands/store.py``), so
parking is as durable as the offset that moved past them. Only what waits
longer than ``LEDGER_PARK_MAX_AGE`` of event time is dead-lettered, with that
reason. ``ledger dead-letters replay`` parks dead letters too (kind
``replay``), to be re-driven once their cause is fixed.

:class:`ParkedFacts` is the consumer's sweep. It runs after a batch that
opened accounts, when the assignment changed, when idle (every second) and
otherwise every ten seconds, always with no save in flight and nothing
prepared behind it, so the aggregates and the stored keys it reads are
current. For the source partitions this consumer holds (so that two consumer
processes never re-drive the same rows; if a rebalance makes them race, the
loser collides and stores nothing), it takes the rows whose account is now
open, and the replayed letters, oldest first, one transaction per source
partition, and sends them down the consumer's own path: the same decode,
in-batch and stored dedupe, mapping (one event per account and month per batch) and
apply. The transaction stores their events and dedupe keys, no Kafka
position, and deletes exactly those parked rows, or fails and stores nothing
(another writer settled them first): a fact is applied once. What is refused
now is dead-lettered with the new reason; a replayed letter whose account is
still not open waits as ``early``, same id, so its order is kept.

Ordering: parked facts of one account are applied in the order they were
parked. Facts of that account that arrive after its opening are applied as
they come, possibly before the parked ones (the sweep follows the batch that
opened the account, not every batch after it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from eventsourcing.persistence import IntegrityError, OperationalError
from kafka import TopicPartition

from commands.batch_rows import DeadLetterRow
from commands.handlers import BatchWork, Parking, save_batch
from commands.parked import ParkedRow, Redriven, StillParked
from consumers.batch import BatchOutcome
from consumers.messages import Record, RecordLike
from consumers.metrics import DEAD_LETTERS, PARKED, REDRIVEN
from ledger.opening import account_uuid
from ledger.periods import iso_duration

if TYPE_CHECKING:
    from consumers.runner import LedgerConsumer

log = structlog.get_logger(__name__)

#: Seconds between sweeps while the consumer is idle, and while it is busy.
IDLE_SWEEP_SECONDS = 1.0
BUSY_SWEEP_SECONDS = 10.0


def parked_rows(records: Sequence[RecordLike], parkings: Sequence[Parking]) -> list[ParkedRow]:
    """The raw records of a batch's parked commands (found by offset), to keep as they came."""
    if not parkings:
        return []
    by_offset = {r.offset: r for r in records}
    rows = []
    for parking in parkings:
        for origin, event_time in zip(parking.origins, parking.event_times, strict=True):
            record = by_offset[origin.offset]
            rows.append(
                ParkedRow(
                    account_id=parking.account_id,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    key=record.key,
                    payload=record.value or b"",
                    event_time=event_time,
                    reason=parking.reason,
                )
            )
    return rows


class ParkedFacts:
    """The re-drive sweep of one consumer (see the module docstring)."""

    def __init__(
        self, owner: LedgerConsumer, *, clock: Callable[[], datetime], max_age: timedelta
    ) -> None:
        self.owner = owner
        self.clock = clock
        self.max_age = max_age
        #: Rows per re-drive transaction, as many as a consumed batch.
        self.page = owner.max_records
        #: Sweep at the next chance: accounts were opened, or a page was full.
        self.due = True
        self._swept_at = float("-inf")
        self._swept_for: frozenset[TopicPartition] = frozenset()

    def maybe_sweep(self, *, idle: bool) -> None:
        wait = IDLE_SWEEP_SECONDS if idle else BUSY_SWEEP_SECONDS
        if (
            self.due
            or time.monotonic() - self._swept_at >= wait
            or frozenset(self.owner.consumer.assignment()) != self._swept_for
        ):
            self.sweep()

    def sweep(self) -> list[BatchOutcome]:
        """Settle the save in flight, then dead-letter what waited too long and
        re-drive what can be applied now."""
        owner = self.owner
        outcomes: list[BatchOutcome] = []
        with owner.pipeline.lock:
            owner.pipeline.settle()
            self.due = False
            self._swept_at = time.monotonic()
            held = frozenset(owner.consumer.assignment())
            self._swept_for = held
            partitions = sorted((tp.topic, tp.partition) for tp in held)
            recorder = owner.recorder
            if partitions:
                # Not while account facts may be unread: an opening queued behind a
                # restart or a held partition would find its facts given up on.
                expired = (
                    recorder.parked_expired(partitions, self.clock() - self.max_age, self.page)
                    if owner.accounts_current
                    else []
                )
                for tp, rows in _by_partition(expired):
                    outcomes.append(self._expire(tp, rows))
                ready = recorder.parked_ready(partitions, self.page)
                for tp, rows in _by_partition(ready):
                    outcomes.append(self._redrive(tp, rows))
                if self.page in (len(expired), len(ready)):
                    self.due = True  # more than a page: carry on at the next poll
            PARKED.set(recorder.parked_count())
        return outcomes

    def _redrive(self, tp: TopicPartition, rows: list[ParkedRow]) -> BatchOutcome:
        """One source partition's ready rows through the consumer's own path.

        The records get the parked row's id as their offset: unique (two log
        generations may reuse an offset) and what maps each command's outcome
        back to its row; dead letters carry the original coordinates.
        """
        owner = self.owner
        records = [Record(r.topic, r.partition, r.id, r.key, r.payload) for r in rows]
        prepared = owner.batches.prepare(tp, records)
        work = owner.batches.work_for(prepared)
        by_id = {r.id: r for r in rows}
        dead = [_dead_letter(by_id[r.record.offset], r.reason) for r in prepared.batch.refused]
        dead += [
            _dead_letter(by_id[origin.offset], rejection.reason)
            for rejection in work.rejections
            for origin in rejection.origins
        ]
        still = [
            StillParked(origin.offset, parking.account_id, event_time, parking.reason)
            for parking in work.parkings
            for origin, event_time in zip(parking.origins, parking.event_times, strict=True)
        ]
        waiting = {s.id for s in still}
        settled = [r.id for r in rows if r.id not in waiting]
        outcome = _outcome(
            tp,
            records=len(rows),
            applied=work.applied_messages,
            duplicates=prepared.batch.duplicates,
            dead_letters=len(dead),
            parked=len(still),
            accounts=len(work.accounts),
        )
        owner.dead_letters.publish(dead)  # flushed before the transaction, as for a batch
        try:
            save_batch(work, None, dead, redriven=Redriven(settled, still))
        except (IntegrityError, OperationalError) as exc:
            return self._collided(outcome, work, exc)
        if work.opened:
            self.due = True  # replayed openings: their parked facts are ready now
        for name, count in (
            ("applied", outcome.applied),
            ("duplicate", outcome.duplicates),
            ("dead_letter", outcome.dead_letters),
            ("still_parked", outcome.parked),
        ):
            REDRIVEN.labels(tp.topic, name).inc(count)
        DEAD_LETTERS.labels(tp.topic).inc(outcome.dead_letters)
        log.info(
            "parked_redriven",
            topic=tp.topic,
            partition=tp.partition,
            rows=len(rows),
            applied=outcome.applied,
            duplicates=outcome.duplicates,
            dead_letters=outcome.dead_letters,
            still_parked=outcome.parked,
            accounts=sorted(work.accounts)[:20],
        )
        owner.pipeline.finished(outcome)
        return outcome

    def _expire(self, tp: TopicPartition, rows: list[ParkedRow]) -> BatchOutcome:
        """Rows whose account did not open within the bound: dead letters, in one
        transaction with their removal from the parked table."""
        owner = self.owner
        bound = iso_duration(self.max_age)
        dead = [
            _dead_letter(r, f"account {r.account_id!r} not opened within {bound} of the event")
            for r in rows
        ]
        outcome = _outcome(tp, records=len(rows), dead_letters=len(dead))
        work = BatchWork(owner.ledger, owner.catalogue)
        owner.dead_letters.publish(dead)
        try:
            save_batch(work, None, dead, redriven=Redriven([r.id for r in rows]))
        except (IntegrityError, OperationalError) as exc:
            return self._collided(outcome, work, exc)
        REDRIVEN.labels(tp.topic, "expired").inc(len(rows))
        DEAD_LETTERS.labels(tp.topic).inc(len(dead))
        log.warning(
            "parked_expired",
            topic=tp.topic,
            partition=tp.partition,
            rows=len(rows),
            accounts=sorted({r.account_id for r in rows})[:20],
            bound=bound,
        )
        owner.pipeline.finished(outcome)
        return outcome

    def _collided(self, outcome: BatchOutcome, work: BatchWork, exc: Exception) -> BatchOutcome:
        """Nothing of the attempt was stored; the rows are still parked (or were
        settled by another writer): evict what it loaded and look again next poll."""
        self.owner.ledger.evict([account_uuid(a) for a in work.accounts])
        log.warning(
            "redrive_collided_retrying",
            topic=outcome.topic,
            partition=outcome.partition,
            rows=outcome.records,
            error=str(exc).splitlines()[0],
        )
        outcome.nothing_stored()
        self.due = True
        self.owner.pipeline.finished(outcome)
        return outcome


def _by_partition(rows: list[ParkedRow]) -> list[tuple[TopicPartition, list[ParkedRow]]]:
    """Rows grouped by source partition; groups in the order of their oldest row."""
    groups: dict[tuple[str, int], list[ParkedRow]] = {}
    for row in rows:
        groups.setdefault((row.topic, row.partition), []).append(row)
    return [(TopicPartition(topic, part), group) for (topic, part), group in groups.items()]


def _dead_letter(row: ParkedRow, reason: str) -> DeadLetterRow:
    return DeadLetterRow(row.topic, row.partition, row.offset, reason, row.key, row.payload)


def _outcome(
    tp: TopicPartition,
    *,
    records: int,
    applied: int = 0,
    duplicates: int = 0,
    dead_letters: int = 0,
    parked: int = 0,
    accounts: int = 0,
) -> BatchOutcome:
    return BatchOutcome(
        records=records,
        applied=applied,
        duplicates=duplicates,
        dead_letters=dead_letters,
        parked=parked,
        accounts=accounts,
        topic=tp.topic,
        partition=tp.partition,
        redriven=True,
    )
