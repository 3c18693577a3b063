"""A partition's records wait in the gathering until the oldest has waited its time or
enough are gathered; what is forgotten is read again (``consumers/gathering.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from kafka import TopicPartition

from consumers.gathering import Gathering
from consumers.messages import Record, RecordLike

P0 = TopicPartition("billing.email-sent", 0)
P1 = TopicPartition("billing.email-sent", 1)


@dataclass
class Clock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now


def recs(*offsets: int) -> list[RecordLike]:
    return [Record(P0.topic, 0, o, None, b"{}") for o in offsets]


def offsets(due: list[tuple[TopicPartition, list[RecordLike]]]) -> dict[int, list[int]]:
    return {tp.partition: [r.offset for r in records] for tp, records in due}


def test_records_wait_until_the_oldest_has_waited_the_gathering_time() -> None:
    clock = Clock()
    gathering = Gathering(2.0, max_records=100, clock=clock)
    gathering.add(P0, recs(0, 1))
    clock.now += 1.5
    gathering.add(P0, recs(2))
    assert gathering.due() == []
    wait = gathering.wait_seconds()
    assert wait is not None and wait == 0.5
    clock.now += 0.5
    assert offsets(gathering.due()) == {0: [0, 1, 2]}
    assert len(gathering) == 0
    assert gathering.wait_seconds() is None


def test_each_partition_waits_from_its_own_oldest_record() -> None:
    clock = Clock()
    gathering = Gathering(2.0, max_records=100, clock=clock)
    gathering.add(P0, recs(10))
    clock.now += 1.0
    gathering.add(P1, recs(20, 21))
    clock.now += 1.0
    assert offsets(gathering.due()) == {0: [10]}
    assert len(gathering) == 2
    clock.now += 1.0
    assert offsets(gathering.due()) == {1: [20, 21]}


def test_a_full_batch_is_due_at_once() -> None:
    gathering = Gathering(2.0, max_records=3, clock=Clock())
    gathering.add(P0, recs(0, 1))
    assert gathering.due() == []
    gathering.add(P0, recs(2, 3))
    assert offsets(gathering.due()) == {0: [0, 1, 2, 3]}


def test_everything_is_due_when_asked_for() -> None:
    gathering = Gathering(2.0, max_records=100, clock=Clock())
    gathering.add(P0, recs(0))
    gathering.add(P1, recs(5))
    assert offsets(gathering.due(everything=True)) == {0: [0], 1: [5]}


def test_forgotten_partitions_are_dropped_and_the_rest_kept() -> None:
    clock = Clock()
    gathering = Gathering(2.0, max_records=100, clock=clock)
    gathering.add(P0, recs(0, 1))
    gathering.add(P1, recs(7))
    gathering.forget([P0])
    assert len(gathering) == 1
    # After the seek, P0 is read again from its stored position: a new gathering.
    clock.now += 1.0
    gathering.add(P0, recs(0, 1, 2))
    clock.now += 1.0
    assert offsets(gathering.due()) == {1: [7]}
    clock.now += 1.0
    assert offsets(gathering.due()) == {0: [0, 1, 2]}


def test_nothing_added_holds_nothing() -> None:
    gathering = Gathering(2.0, max_records=100, clock=Clock())
    gathering.add(P0, [])
    assert gathering.wait_seconds() is None
    assert gathering.due(everything=True) == []


def test_a_partition_behind_its_log_waits_for_nothing() -> None:
    """A backlog: its records are applied as they come, the others keep gathering."""
    gathering = Gathering(2.0, max_records=100, clock=Clock())
    gathering.add(P0, recs(0, 1))
    gathering.add(P1, recs(5))
    assert offsets(gathering.due(behind=[P0])) == {0: [0, 1]}
    assert len(gathering) == 1
