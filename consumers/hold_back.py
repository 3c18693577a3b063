"""Accounts first: usage waits until the account facts present at assignment are applied.

Kafka orders the records of one partition, never those of two topics. After an
assignment, an ``email.sent`` read before the ``account.opened`` queued on the
accounts topic would be parked, or dead-lettered once its wait ran out, for an
account that is in fact open. So when an assignment holds partitions of the
accounts topic and of others, the others stay paused until each accounts
partition has been read up to the end its log had when its position was
checked. A held accounts partition (its stored position outside its log) no
longer holds usage back: what comes before its account is parked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import structlog
from kafka import TopicPartition

log = structlog.get_logger(__name__)

#: The log end of an accounts partition not checked yet.
UNKNOWN = -1


class AccountsFirst:
    def __init__(self, priority: frozenset[str]) -> None:
        #: The accounts topic(s).
        self.priority = priority
        #: Accounts partitions holding usage back, and the log end each must reach.
        self._ends: dict[TopicPartition, int] = {}

    @property
    def holding(self) -> bool:
        return bool(self._ends)

    def assigned(self, partitions: Sequence[TopicPartition]) -> None:
        priority = [tp for tp in partitions if tp.topic in self.priority]
        others = [tp for tp in partitions if tp.topic not in self.priority]
        self._ends = {tp: UNKNOWN for tp in priority} if priority and others else {}

    def paused(self, assigned: Iterable[TopicPartition]) -> set[TopicPartition]:
        """The partitions to keep paused while usage is held back."""
        if not self._ends:
            return set()
        return {tp for tp in assigned if tp.topic not in self.priority}

    def checked(self, tp: TopicPartition, log_end: int) -> None:
        """An accounts partition's position was checked: it must be read up to ``log_end``."""
        if self._ends.get(tp) == UNKNOWN:
            self._ends[tp] = log_end

    def held(self, tp: TopicPartition) -> None:
        self._ends.pop(tp, None)

    def release(self, reached: Callable[[TopicPartition], int | None]) -> bool:
        """Let usage go once every accounts partition ``reached`` its end (``None``:
        no longer assigned, or held). True when usage was released by this call."""
        if not self._ends or any(end == UNKNOWN for end in self._ends.values()):
            return False
        for tp, end in list(self._ends.items()):
            offset = reached(tp)
            if offset is None or offset >= end:
                del self._ends[tp]
        if self._ends:
            return False
        log.info("accounts_caught_up_resuming_usage")
        return True
