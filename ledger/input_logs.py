"""The upstream logs the ledger has read, as history an auditor can follow.

A stored Kafka position (``Tracking``) is an offset, and an offset means
something only in the log it was read from. A topic that is deleted and
created again, or the ledger's embedded broker (in memory: every start is a
new, empty log), starts its offsets at 0 again: the same numbers now name
other records. A position carried over would then skip every record up to it
in silence. So each partition's position is kept *per log*: the Kafka topic
id names the log, and the tracking name carries it.

A :class:`PartitionLog` records, for one (topic, partition), which log the
ledger reads now and every change of it:

- ``Adopted`` / ``Replaced``: the ledger met a log it had not read before and
  reads it from its start (nothing in a new log was consumed yet; the facts
  re-published into it are refused by their dedupe keys). What was left
  unread in the old log, if anything, is stated: a log that was closed
  cleanly says how many records it still held; one that vanished (a killed
  broker) is said to be unknown.
- ``Held``: the stored position lies outside the log (before its start:
  records deleted unread; beyond its end: not taken in this log). Nothing of
  the partition is read until a ``Reset`` or a new log, whatever the log does
  meanwhile: a log that grows past a foreign position is no reason to read on.
- ``Reset``: an operator moved the position within the same log (after it
  fell outside the log: records deleted by retention before they were read,
  or a log that ends before the position). The tracking name gets a new
  epoch, since eventsourcing refuses a position lower than the stored one.
- ``Closed``: the ledger stopped the embedded broker that held this log, and
  counted what it had not consumed of it.

Pure: no Kafka here; the consumer (``consumers/positions.py``) feeds it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from eventsourcing.domain import Aggregate, event

from ledger.errors import LedgerError

LOG_NAMESPACE = uuid.UUID("3d1b7f0c-9a2e-5b44-8e61-5c0a2f9d7e13")

#: The log id of a broker that names no topic ids (Kafka before 2.8).
UNNAMED_LOG = "-"


class PositionNotResettable(LedgerError):
    """A reset asked for something the log cannot give, or that would hide records."""


def partition_log_uuid(topic: str, partition: int) -> uuid.UUID:
    return uuid.uuid5(LOG_NAMESPACE, f"kafka-log:{topic}:{partition}")


def tracking_name(topic: str, partition: int, log_id: str, epoch: int) -> str:
    """The eventsourcing tracking name of a partition's position in one log (and epoch)."""
    return f"kafka:{topic}:{partition}@{log_id}" + (f"+{epoch}" if epoch else "")


def next_offset(start_offset: int, stored: int | None) -> int:
    """The first offset to read: after the stored position, else the epoch's start."""
    return start_offset if stored is None else stored + 1


def classify(next_offset: int, log_start: int, log_end: int) -> str:
    """Where the next offset to read lies in the log: ``ok``, ``before_start`` or ``beyond_end``.

    ``before_start``: records between the position and the log's start were
    deleted (retention) before the ledger read them. ``beyond_end``: the log
    ends before the position, so the position was not taken in this log.
    Either way nothing can be read without guessing, and the ledger does not guess.
    """
    if next_offset < log_start:
        return "before_start"
    if next_offset > log_end:
        return "beyond_end"
    return "ok"


class PartitionLog(Aggregate):
    if TYPE_CHECKING:
        Adopted: ClassVar[type[Aggregate.Created]]
        Replaced: ClassVar[type[Aggregate.Event]]
        Reset: ClassVar[type[Aggregate.Event]]
        Held: ClassVar[type[Aggregate.Event]]
        Closed: ClassVar[type[Aggregate.Event]]

    @staticmethod
    def create_id(topic: str, partition: int, **_: object) -> uuid.UUID:
        return partition_log_uuid(topic, partition)

    @classmethod
    def adopt(
        cls, *, topic: str, partition: int, log_id: str, start_offset: int, at: datetime
    ) -> PartitionLog:
        """The first log the ledger reads for this partition, from ``start_offset``."""
        return cls(
            topic=topic, partition=partition, log_id=log_id, start_offset=start_offset, at=at
        )

    @event("Adopted")
    def __init__(
        self, *, topic: str, partition: int, log_id: str, start_offset: int, at: datetime
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.log_id = log_id
        self.epoch = 0
        self.start_offset = start_offset
        self.changed_at = at
        #: The unconsumed records counted when the current log was closed (None: not closed).
        self.unconsumed_at_close: int | None = None
        #: Why the partition is held (``before_start`` | ``beyond_end``), until a reset or a
        #: new log: a hold is not lifted by the log changing under it.
        self.held: str | None = None

    @property
    def tracking_name(self) -> str:
        return tracking_name(self.topic, self.partition, self.log_id, self.epoch)

    def next_offset(self, stored: int | None) -> int:
        return next_offset(self.start_offset, stored)

    def replace(self, *, log_id: str, start_offset: int, stored: int | None, at: datetime) -> None:
        """A new log took the old one's place: read it from ``start_offset``.

        ``stored`` is the last position read in the old log; what the old log
        held after it is ``unconsumed_at_close`` if it was closed, else unknown.
        """
        if log_id == self.log_id:
            raise PositionNotResettable(f"{self.topic}:{self.partition} already reads log {log_id}")
        self._replaced(
            log_id=log_id,
            epoch=self.epoch + 1,
            start_offset=start_offset,
            previous_log_id=self.log_id,
            previous_epoch=self.epoch,
            previous_position=stored,
            previous_unconsumed=self.unconsumed_at_close,
            at=at,
        )

    @event("Replaced")
    def _replaced(
        self,
        *,
        log_id: str,
        epoch: int,
        start_offset: int,
        previous_log_id: str,
        previous_epoch: int,
        previous_position: int | None,
        previous_unconsumed: int | None,
        at: datetime,
    ) -> None:
        self.log_id = log_id
        self.epoch = epoch  # never 0 again: no tracking name is ever reused
        self.start_offset = start_offset
        self.changed_at = at
        self.unconsumed_at_close = None
        self.held = None

    def reset(
        self,
        *,
        to_offset: int,
        stored: int | None,
        log_start: int,
        log_end: int,
        reason: str,
        at: datetime,
    ) -> None:
        """Read this log from ``to_offset`` on: an operator's decision, recorded with why."""
        if not reason.strip():
            raise PositionNotResettable("a reset needs a reason (it is kept in the history)")
        if not log_start <= to_offset <= log_end:
            raise PositionNotResettable(
                f"offset {to_offset} is outside the log of {self.topic}:{self.partition}"
                f" ({log_start}..{log_end})"
            )
        self._reset(
            epoch=self.epoch + 1,
            start_offset=to_offset,
            previous_position=stored,
            log_start=log_start,
            log_end=log_end,
            reason=reason.strip(),
            at=at,
        )

    @event("Reset")
    def _reset(
        self,
        *,
        epoch: int,
        start_offset: int,
        previous_position: int | None,
        log_start: int,
        log_end: int,
        reason: str,
        at: datetime,
    ) -> None:
        self.epoch = epoch
        self.start_offset = start_offset
        self.changed_at = at
        self.held = None

    def hold(
        self, *, status: str, stored: int | None, log_start: int, log_end: int, at: datetime
    ) -> None:
        """The stored position lies outside the log (``classify``): nothing is read
        until an operator resets it, whatever the log does meanwhile (a log that
        grows past a foreign position must not be read from there)."""
        if status not in ("before_start", "beyond_end"):
            raise PositionNotResettable(f"not a reason to hold a partition: {status!r}")
        if self.held is None:
            self._held(status=status, position=stored, log_start=log_start, log_end=log_end, at=at)

    @event("Held")
    def _held(
        self, *, status: str, position: int | None, log_start: int, log_end: int, at: datetime
    ) -> None:
        self.held = status
        self.changed_at = at

    def close(self, *, stored: int | None, log_end: int, at: datetime) -> int:
        """The log is going away (the embedded broker stops): count what was not read."""
        unconsumed = max(0, log_end - self.next_offset(stored))
        self._closed(
            log_id=self.log_id, position=stored, log_end=log_end, unconsumed=unconsumed, at=at
        )
        return unconsumed

    @event("Closed")
    def _closed(
        self, *, log_id: str, position: int | None, log_end: int, unconsumed: int, at: datetime
    ) -> None:
        self.unconsumed_at_close = unconsumed
        self.changed_at = at
