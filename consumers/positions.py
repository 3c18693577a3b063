"""Each partition's stored position, in the log it was read from, checked against that log.

The consumer asks this before it reads a partition (on every assignment) and
every few seconds after; ``ledger positions`` asks it to show an operator
where each partition stands. Three outcomes:

- the broker's log is the one the position was read from, and the next offset
  lies within it: read on (``ok``);
- the broker holds another log (new topic id): that log is recorded as the
  partition's new log (``PartitionLog.replace``, in the ledger's history) and
  read from its start; what the old log still held, if known, is said;
- the next offset lies outside the log (``before_start``: deleted unread;
  ``beyond_end``): the partition is **held** (not read), loudly, until an
  operator resets it (``ledger positions reset``), which is recorded too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from kafka import TopicPartition

from consumers.log_probe import LogProbe
from ledger.application import Ledger
from ledger.input_logs import PartitionLog, classify, next_offset, partition_log_uuid

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class PartitionPosition:
    topic: str
    partition: int
    log_id: str
    epoch: int
    tracking_name: str
    #: The first offset this log and epoch are read from.
    start_offset: int
    #: The last offset applied in this log and epoch (None: nothing yet).
    stored: int | None
    next_offset: int
    log_start: int
    log_end: int
    status: str  # ok | before_start | beyond_end

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    def next_after(self, stored: int | None) -> int:
        return next_offset(self.start_offset, stored)

    @property
    def held(self) -> bool:
        return self.status != "ok"

    @property
    def lag(self) -> int:
        """Records in the log not applied yet. Outside the log, none of it is known
        to be applied: the whole log counts (never 0 while records wait)."""
        if self.held:
            return self.log_end - self.log_start
        return max(0, self.log_end - self.next_offset)

    @property
    def reason(self) -> str:
        if self.status == "before_start":
            return (
                f"stored position {self.stored} is before the log's start {self.log_start}:"
                f" records {self.next_offset}..{self.log_start - 1} were deleted unread"
            )
        if self.status == "new_log":
            return "a new log, not read yet: a consumer reads it from its start"
        if self.status == "beyond_end":
            return (
                f"stored position {self.stored} is beyond the log's end {self.log_end}:"
                " it was not taken in this log"
            )
        return "ok"


def load_partition_log(ledger: Ledger, topic: str, partition: int) -> PartitionLog | None:
    """The partition's log record as stored now (never a cached copy: others write it)."""
    aggregate_id = partition_log_uuid(topic, partition)
    ledger.evict([aggregate_id])
    try:
        found: PartitionLog = ledger.repository.get(aggregate_id)
    except AggregateNotFoundError:
        return None
    assert isinstance(found, PartitionLog)
    return found


def stored_position(ledger: Ledger, topic: str, partition: int) -> int | None:
    """The last offset applied of the partition's current log (None: nothing yet)."""
    partition_log = load_partition_log(ledger, topic, partition)
    return None if partition_log is None else _stored(ledger, partition_log)


def stored_next(ledger: Ledger, topic: str, partition: int) -> int:
    """The first offset to read of the partition's current log, as PostgreSQL holds it
    (0 for a partition never read)."""
    partition_log = load_partition_log(ledger, topic, partition)
    return 0 if partition_log is None else partition_log.next_offset(_stored(ledger, partition_log))


def _stored(ledger: Ledger, partition_log: PartitionLog) -> int | None:
    position: int | None = ledger.process_recorder.max_tracking_id(partition_log.tracking_name)
    return position


class Positions:
    def __init__(self, ledger: Ledger, probe: LogProbe, clock: Clock | None = None) -> None:
        self.ledger = ledger
        self.probe = probe
        self.clock = clock or (lambda: datetime.now(UTC))

    def check(
        self, partitions: Sequence[TopicPartition], *, adopt: bool = True, exact: bool = False
    ) -> dict[TopicPartition, PartitionPosition]:
        """Where each partition stands. A partition whose broker log is new is recorded
        as reading that log from its start first (``adopt``; else it is reported as
        ``new_log`` and nothing is written). A partition the broker cannot describe
        now, or whose end it cannot confirm, is left out: unknown is not a verdict.
        ``exact``: every end made exact (for counting what is left, not just deciding)."""
        if not partitions:
            return {}
        log_ids = self.probe.log_ids(tp.topic for tp in partitions)
        known = [tp for tp in partitions if tp.topic in log_ids]
        logs = {tp: load_partition_log(self.ledger, tp.topic, tp.partition) for tp in known}
        reading_from = {}
        for tp, partition_log in logs.items():
            if partition_log is not None and partition_log.log_id == log_ids[tp.topic]:
                reading_from[tp] = partition_log.next_offset(self._stored(partition_log))
        bounds = self.probe.bounds(known, reading_from, exact=exact)
        unverified = set(self.probe.unverified)
        checked: dict[TopicPartition, PartitionPosition] = {}
        for tp in known:
            start, end = bounds[tp]
            partition_log = logs[tp]
            if partition_log is None or partition_log.log_id != log_ids[tp.topic]:
                if not adopt:
                    checked[tp] = self._new_log(tp, log_ids[tp.topic], start, end)
                    continue
                partition_log = self._take_new_log(tp, log_ids[tp.topic], start, end)
                if partition_log.next_offset(self._stored(partition_log)) >= end:
                    start, end = self.probe.bounds([tp], {tp: start}, exact=exact)[tp]
                    unverified |= self.probe.unverified
            stored = self._stored(partition_log)
            next_offset = partition_log.next_offset(stored)
            status = partition_log.held or classify(next_offset, start, end)
            if status == "beyond_end" and tp in unverified and not partition_log.held:
                continue  # the probe could not read the log's last batch: ask again later
            if status != "ok" and not partition_log.held and adopt:
                self._record_hold(partition_log, status, stored, start, end)
            checked[tp] = PartitionPosition(
                topic=tp.topic,
                partition=tp.partition,
                log_id=partition_log.log_id,
                epoch=partition_log.epoch,
                tracking_name=partition_log.tracking_name,
                start_offset=partition_log.start_offset,
                stored=stored,
                next_offset=next_offset,
                log_start=start,
                log_end=end,
                status=status,
            )
        return checked

    def _new_log(self, tp: TopicPartition, log_id: str, start: int, end: int) -> PartitionPosition:
        """A log no consumer has taken yet, as ``ledger positions`` shows it."""
        return PartitionPosition(
            topic=tp.topic,
            partition=tp.partition,
            log_id=log_id,
            epoch=0,
            tracking_name="",
            start_offset=start,
            stored=None,
            next_offset=start,
            log_start=start,
            log_end=end,
            status="new_log",
        )

    def all_partitions(self, topics: Iterable[str]) -> list[TopicPartition]:
        return [tp for topic in topics for tp in self.probe.partitions(topic)]

    def _record_hold(
        self, partition_log: PartitionLog, status: str, stored: int | None, start: int, end: int
    ) -> None:
        """Held in the history, so that no restart, and no log growing past the
        position, lifts it without an operator's reset."""
        partition_log.hold(
            status=status, stored=stored, log_start=start, log_end=end, at=self.clock()
        )
        try:
            self.ledger.save(partition_log)
        except IntegrityError:  # another process recorded it (or a reset) first
            self.ledger.evict([partition_log.id])

    def _legacy_start(self, tp: TopicPartition, start: int, end: int) -> int:
        """Where to start the first log of a partition: after the position an earlier
        release stored without a log id (``kafka:<topic>:<partition>``), if that
        position lies in this log; else at the log's start."""
        legacy: int | None = self.ledger.process_recorder.max_tracking_id(
            f"kafka:{tp.topic}:{tp.partition}"
        )
        if legacy is not None and start <= legacy + 1 <= end:
            return legacy + 1
        return start

    def _stored(self, partition_log: PartitionLog) -> int | None:
        return _stored(self.ledger, partition_log)

    def _take_new_log(self, tp: TopicPartition, log_id: str, start: int, end: int) -> PartitionLog:
        """Record that the partition now reads ``log_id`` from ``start``.

        Two processes may meet the new log at once (a rebalance, the CLI): the
        second one's save collides, and it reads what the first recorded.
        """
        for _ in range(3):
            partition_log = load_partition_log(self.ledger, tp.topic, tp.partition)
            if partition_log is not None and partition_log.log_id == log_id:
                return partition_log
            if partition_log is None:
                partition_log = PartitionLog.adopt(
                    topic=tp.topic,
                    partition=tp.partition,
                    log_id=log_id,
                    start_offset=self._legacy_start(tp, start, end),
                    at=self.clock(),
                )
                log.info(
                    "partition_log_adopted",
                    topic=tp.topic,
                    partition=tp.partition,
                    log_id=log_id,
                    start_offset=partition_log.start_offset,
                )
            else:
                stored = self._stored(partition_log)
                unconsumed = partition_log.unconsumed_at_close
                partition_log.replace(
                    log_id=log_id, start_offset=start, stored=stored, at=self.clock()
                )
                log.warning(
                    "partition_log_replaced",
                    topic=tp.topic,
                    partition=tp.partition,
                    log_id=log_id,
                    previous_position=stored,
                    previous_unconsumed=(
                        unconsumed
                        if unconsumed is not None
                        else "unknown: the old log was not closed cleanly; records published"
                        " to it after the previous position, if any, are lost with it"
                    ),
                    reading_from=start,
                )
            try:
                self.ledger.save(partition_log)
            except IntegrityError:
                continue
            return partition_log
        raise RuntimeError(f"could not record the new log of {tp.topic}:{tp.partition}")
