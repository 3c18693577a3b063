"""The partitions a consumer is assigned, and where each stands: stored positions
and rebalance handling.

On every assignment each partition is set to the position PostgreSQL holds for
it, and nothing is applied until that position has been checked against the
broker's log (``consumers/positions.py``): then the partition is read from it,
or held (paused) while the position is outside its log, until an operator
resets it. Every assigned partition is checked again every
``POSITION_CHECK_SECONDS``. Kafka's committed offsets are for lag monitoring
only, and the consumer never lets kafka-python reset a position on its own
(``auto_offset_reset="none"``). Usage partitions also wait for the accounts
partitions (``consumers/hold_back.py``).

Nothing here settles a save: the consumer settles the save in flight before it
calls :meth:`PartitionAssignment.assigned` and :meth:`PartitionAssignment.check`,
because a save's outcome moves the stored position.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Sequence

import structlog
from kafka import KafkaConsumer, TopicPartition

from commands.store import LedgerRecorder
from consumers.hold_back import AccountsFirst
from consumers.metrics import forget_partition, report_position
from consumers.positions import PartitionPosition, Positions, stored_next
from ledger.application import Ledger

log = structlog.get_logger(__name__)

#: How often every assigned partition's position is checked against its log
#: (a held partition is released this soon after an operator's reset).
POSITION_CHECK_SECONDS = 5.0


class PartitionAssignment:
    def __init__(
        self,
        consumer: KafkaConsumer,
        ledger: Ledger,
        recorder: LedgerRecorder,
        positions: Positions,
        accounts_first: AccountsFirst,
        forget: Callable[[Iterable[TopicPartition]], None] = lambda _: None,
    ) -> None:
        """``forget`` is told of every partition sought or held: what was read of it
        and not applied (``consumers/gathering.py``) is read again from its new position."""
        self.consumer = consumer
        self.forget = forget
        self.ledger = ledger
        self.recorder = recorder
        self.positions = positions
        self.accounts_first = accounts_first
        #: Assigned partitions checked against their logs and read: where they stand.
        self._checked: dict[TopicPartition, PartitionPosition] = {}
        #: Assigned, not checked yet (their records are dropped until they are).
        self._unchecked: set[TopicPartition] = set()
        #: Assigned and held: the stored position is outside the log (paused).
        self._held: dict[TopicPartition, PartitionPosition] = {}
        self._checked_at = 0.0

    # ------------------------------------------------------------------ where they stand

    def _position(self, tp: TopicPartition) -> PartitionPosition | None:
        return self._checked.get(tp) or self._held.get(tp)

    def stored_position(self, tp: TopicPartition) -> int | None:
        """The last offset applied of the partition (in the log it reads now)."""
        checked = self._position(tp)
        if checked is None:
            return None
        position: int | None = self.recorder.max_tracking_id(checked.tracking_name)
        return position

    def next_offset(self, tp: TopicPartition) -> int:
        checked = self._position(tp)
        if checked is None:
            return 0
        return checked.next_after(self.recorder.max_tracking_id(checked.tracking_name))

    def tracking_name(self, tp: TopicPartition) -> str:
        return self._checked[tp].tracking_name

    def readable(self, tp: TopicPartition) -> bool:
        """Whether records polled from ``tp`` may be applied. Records fetched before
        its position was checked (just assigned) never are: the check seeks it back
        to the stored position, or holds it."""
        if tp in self._checked:
            return True
        self._unchecked.add(tp)
        return False

    def rewind(self, tp: TopicPartition) -> int | None:
        """Seek to the stored position (if the partition is still ours and read); returns it."""
        stored = self.stored_position(tp)
        if tp in self.consumer.assignment() and tp in self._checked:
            self.forget([tp])
            self.consumer.seek(tp, self.next_offset(tp))
        return stored

    @property
    def checked_at(self) -> float:
        """``time.monotonic()`` of the last position check."""
        return self._checked_at

    @property
    def held_partitions(self) -> dict[TopicPartition, PartitionPosition]:
        return dict(self._held)

    @property
    def settled(self) -> bool:
        """Nothing unchecked, held, or held back: every partition is read as it comes."""
        return not (self.accounts_first.holding or self._unchecked or self._held)

    @property
    def accounts_current(self) -> bool:
        """Whether every account fact this consumer can read is applied as far as it
        knows: nothing unchecked, held back or held on the accounts topic. Until then a
        fact waiting for its account is not given up on (its opening may be unread)."""
        return (
            not self._unchecked
            and not self.accounts_first.holding
            and not any(tp.topic in self.accounts_first.priority for tp in self._held)
        )

    # ------------------------------------------------------------------ changes

    def assigned(self, partitions: Sequence[TopicPartition]) -> None:
        """A new assignment: nothing is applied until each partition is checked.

        Runs in a rebalance callback: no broker calls here. Each partition is
        set to the position PostgreSQL holds for it; records fetched before
        :meth:`check` has compared that position with its log are dropped, and
        the check seeks back (or holds the partition). Pausing them instead was
        seen to leave a partition kept across a rebalance never fetched again
        from the embedded broker.
        """
        for tp in {*self._checked, *self._held, *self._unchecked} - set(partitions):
            forget_partition(tp.topic, tp.partition)
        self._checked, self._held = {}, {}
        self._unchecked = set(partitions)
        self.forget(partitions)
        for tp in partitions:
            # Where it stood, as far as PostgreSQL knows without asking the broker.
            self.consumer.seek(tp, stored_next(self.ledger, tp.topic, tp.partition))
            log.info("partition_assigned", topic=tp.topic, partition=tp.partition)
        self.accounts_first.assigned(partitions)
        self.update_pauses()

    def recheck(self, partitions: Iterable[TopicPartition]) -> None:
        """Check these at once (the log no longer holds their positions: they will be held)."""
        self._unchecked.update(partitions)
        self.update_pauses()

    def update_pauses(self) -> None:
        assigned = self.consumer.assignment()
        wanted = (set(self._held) | self.accounts_first.paused(assigned)) & assigned
        paused = set(self.consumer.paused())
        if wanted - paused:
            self.consumer.pause(*(wanted - paused))
        if paused - wanted:
            self.consumer.resume(*(paused - wanted))

    def to_check(self) -> set[TopicPartition]:
        """New assignments at once; every partition (held ones too: an operator may
        have reset one) every ``POSITION_CHECK_SECONDS``."""
        assigned = self.consumer.assignment()
        self._unchecked &= assigned
        if time.monotonic() - self._checked_at > POSITION_CHECK_SECONDS:
            return set(assigned)
        return set(self._unchecked)

    def check(self, wanted: set[TopicPartition]) -> None:
        """Compare stored positions with the broker's logs; seek, hold or release."""
        self._checked_at = time.monotonic()
        for tp, position in self.positions.check(sorted(wanted)).items():
            before = self._position(tp)
            moved = (
                tp in self._unchecked
                or before is None
                or before.held
                or before.tracking_name != position.tracking_name
            )
            self._unchecked.discard(tp)
            report_position(tp.topic, tp.partition, lag=position.lag, held=position.held)
            if position.held:  # a hold is in the history: it lasts until a reset
                self._checked.pop(tp, None)
                self.accounts_first.held(tp)
                if before is None or not before.held or before.reason != position.reason:
                    log.error(
                        "partition_held",
                        topic=tp.topic,
                        partition=tp.partition,
                        reason=position.reason,
                        stored=position.stored,
                        log_start=position.log_start,
                        log_end=position.log_end,
                        resolve="ledger positions reset TOPIC PARTITION --to ... --reason ...",
                    )
                self._held[tp] = position
                self.forget([tp])
                continue
            self._held.pop(tp, None)
            self._checked[tp] = position
            if moved:
                if self.consumer.position(tp) != position.next_offset:
                    self.forget([tp])
                    self.consumer.seek(tp, position.next_offset)
                log.info(
                    "partition_reading",
                    topic=tp.topic,
                    partition=tp.partition,
                    log_id=position.log_id,
                    epoch=position.epoch,
                    resume_after=position.stored,
                    log_end=position.log_end,
                )
            self.accounts_first.checked(tp, position.log_end)
        self.update_pauses()
        with contextlib.suppress(Exception):  # group offsets: for lag dashboards only
            self.consumer.commit_async()

    def maybe_release(self) -> None:
        """Resume usage once the accounts partitions have been read to their ends."""
        if not self.accounts_first.holding:
            return
        assigned = self.consumer.assignment()

        def reached(tp: TopicPartition) -> int | None:
            if tp not in assigned or tp in self._held:
                return None
            # The consumer's own position counts too: a transaction marker or an
            # expired log can keep the stored position short of the end forever.
            position: int = self.consumer.position(tp)
            return max(self.next_offset(tp), position)

        if self.accounts_first.release(reached):
            self.update_pauses()
