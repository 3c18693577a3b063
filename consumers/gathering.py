"""Records gathered per partition for a bounded time before they are applied.

A live stream polled every few milliseconds hands over a handful of records
per partition each time. Applied as they come, each poll would store one event
per account touched, and the read side would decode and write as many: the
history would be cut by the poll, not by time. So usage records wait in the
gathering until the oldest of their partition has waited ``seconds`` (a
latency bound well inside the read side's budget) or ``max_records`` are
gathered, whichever comes first. A partition whose log holds more than was
read (a backlog) waits for nothing: its records are applied as they come, in
batches as large as a poll gives. Account facts are never gathered: they go
first (``hold_back.py``).

Nothing gathered is acknowledged: a partition's stored position moves only
with the transaction that applies its records. Whatever the consumer drops
from the gathering (its partition revoked, sought back after a failed save,
held, or the process stopping) is therefore read again from the stored
position, never lost; and the consumer forgets a partition's records on every
seek, so records are never applied out of their order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field

from kafka import TopicPartition

from consumers.messages import RecordLike


@dataclass(slots=True)
class _Gathered:
    since: float
    records: list[RecordLike] = field(default_factory=list)


class Gathering:
    def __init__(
        self,
        seconds: float,
        max_records: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = seconds
        self.max_records = max_records
        self.clock = clock
        self._held: dict[TopicPartition, _Gathered] = {}

    def __len__(self) -> int:
        """Records gathered and not applied yet."""
        return sum(len(g.records) for g in self._held.values())

    def add(self, tp: TopicPartition, records: Sequence[RecordLike]) -> None:
        if not records:
            return
        gathered = self._held.setdefault(tp, _Gathered(self.clock()))
        gathered.records.extend(records)

    def due(
        self, *, everything: bool = False, behind: Collection[TopicPartition] = ()
    ) -> list[tuple[TopicPartition, list[RecordLike]]]:
        """The partitions whose records are to be applied now (all with ``everything``,
        and those ``behind`` their log's end at once), taken out of the gathering,
        each with its records in offset order."""
        now = self.clock()
        ready = [
            tp
            for tp, gathered in self._held.items()
            if everything
            or tp in behind
            or len(gathered.records) >= self.max_records
            or now - gathered.since >= self.seconds
        ]
        return [(tp, self._held.pop(tp).records) for tp in ready]

    def wait_seconds(self) -> float | None:
        """How long until the oldest gathered partition is due; None when none is held."""
        if not self._held:
            return None
        oldest = min(gathered.since for gathered in self._held.values())
        return max(0.0, oldest + self.seconds - self.clock())

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Drop what was gathered of ``partitions``: it will be read again."""
        for tp in partitions:
            self._held.pop(tp, None)
