"""The consumer pipeline's ordering and failure rules, with a fake save.

No Kafka, no PostgreSQL: the batches are names (or offset ranges of one fake
partition), the save is a function on the pipeline's real worker thread that
records what it did and collides, fails or waits when told to.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError
from kafka import TopicPartition

from consumers.batch import BatchOutcome
from consumers.gathering import Gathering
from consumers.messages import Record
from consumers.pipeline import SavePipeline, database_worker
from consumers.runner import _SeekToStoredPositions


@dataclass
class FakeSteps:
    """Batches are names; every step appends what it did to ``events``."""

    #: Names whose first save raises this error (stores nothing), once each.
    fail_once: dict[str, Exception] = field(default_factory=dict)
    #: Names whose save waits for the event first.
    gates: dict[str, threading.Event] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    #: What the saves stored, in order.
    stored: list[str] = field(default_factory=list)

    def apply(self, prepared: str) -> str:
        self.events.append(f"apply:{prepared}")
        return prepared

    def save(self, applied: str) -> None:
        if applied in self.gates:
            self.gates[applied].wait()
        error = self.fail_once.pop(applied, None)
        if error is not None:
            self.events.append(f"save:{applied}:failed")
            raise error
        self.stored.append(applied)
        self.events.append(f"save:{applied}")

    def committed(self, applied: str) -> BatchOutcome:
        self.events.append(f"committed:{applied}")
        return BatchOutcome(topic=applied)

    def failed(self, applied: str, error: Exception) -> BatchOutcome:
        self.events.append(f"failed:{applied}")
        return BatchOutcome(topic=applied, redo=True)

    def discarded(self, prepared: str) -> BatchOutcome:
        self.events.append(f"discarded:{prepared}")
        return BatchOutcome(topic=prepared, redo=True, discarded=True)


def pipeline_of(steps: FakeSteps) -> SavePipeline[str, str]:
    return SavePipeline(steps, database_worker())


def outcomes_of(pipeline: SavePipeline[Any, Any]) -> list[tuple[str, bool, bool]]:
    return [(o.topic, o.redo, o.discarded) for o in pipeline.take_outcomes()]


def test_a_batch_is_applied_only_after_the_save_before_it_committed() -> None:
    steps = FakeSteps()
    pipeline = pipeline_of(steps)
    pipeline.push("A")
    pipeline.push("B")
    pipeline.close()
    assert steps.events == [
        "apply:A",
        "save:A",
        "committed:A",
        "apply:B",
        "save:B",
        "committed:B",
    ]
    assert outcomes_of(pipeline) == [("A", False, False), ("B", False, False)]


@pytest.mark.parametrize(
    "error", [IntegrityError("collision"), OperationalError("lock timeout")], ids=type
)
def test_a_failed_save_of_batch_n_discards_batch_n_plus_1_unapplied(error: Exception) -> None:
    steps = FakeSteps(fail_once={"N": error})
    pipeline = pipeline_of(steps)
    pipeline.push("N")
    pipeline.push("N+1")
    pipeline.close()
    assert steps.events == ["apply:N", "save:N:failed", "failed:N", "discarded:N+1"]
    assert steps.stored == []
    assert outcomes_of(pipeline) == [("N", True, False), ("N+1", True, True)]
    assert not pipeline.in_flight


def test_the_batch_after_a_discarded_one_is_applied_again() -> None:
    """Discarding settles nothing new: the next batch (another partition's) goes on."""
    steps = FakeSteps(fail_once={"N": IntegrityError("collision")})
    pipeline = pipeline_of(steps)
    for name in ("N", "N+1", "other"):
        pipeline.push(name)
    pipeline.close()
    assert steps.events == [
        "apply:N",
        "save:N:failed",
        "failed:N",
        "discarded:N+1",
        "apply:other",
        "save:other",
        "committed:other",
    ]


@dataclass
class FakePartition:
    """One partition of six records, polled two at a time, its position stored by the save."""

    end: int = 6
    #: The next offset a poll returns.
    position: int = 0
    #: The last offset stored (``None``: nothing yet).
    stored: int | None = None

    def poll(self) -> tuple[int, int] | None:
        if self.position >= self.end:
            return None
        batch = (self.position, min(self.position + 2, self.end) - 1)
        self.position = batch[1] + 1
        return batch

    def rewind(self) -> None:
        self.position = 0 if self.stored is None else self.stored + 1


@dataclass
class PartitionSteps:
    partition: FakePartition
    collide_once: set[tuple[int, int]]
    applied: list[tuple[int, int]] = field(default_factory=list)
    saved: list[tuple[int, int]] = field(default_factory=list)
    discarded_batches: list[tuple[int, int]] = field(default_factory=list)

    def apply(self, prepared: tuple[int, int]) -> tuple[int, int]:
        self.applied.append(prepared)
        return prepared

    def save(self, applied: tuple[int, int]) -> None:
        if applied in self.collide_once:
            self.collide_once.discard(applied)
            raise IntegrityError("duplicate key value violates unique constraint")
        # The position is stored only if it moves on (the recorder refuses it otherwise).
        assert self.partition.stored is None or applied[0] == self.partition.stored + 1
        self.partition.stored = applied[1]
        self.saved.append(applied)

    def committed(self, applied: tuple[int, int]) -> BatchOutcome:
        return BatchOutcome(first_offset=applied[0], last_offset=applied[1])

    def failed(self, applied: tuple[int, int], error: Exception) -> BatchOutcome:
        self.partition.rewind()
        return BatchOutcome(first_offset=applied[0], last_offset=applied[1], redo=True)

    def discarded(self, prepared: tuple[int, int]) -> BatchOutcome:
        self.discarded_batches.append(prepared)
        self.partition.rewind()
        return BatchOutcome(
            first_offset=prepared[0], last_offset=prepared[1], redo=True, discarded=True
        )


def test_a_collision_redoes_batch_n_and_the_discarded_n_plus_1_exactly_once() -> None:
    partition = FakePartition()
    steps = PartitionSteps(partition, collide_once={(0, 1)})
    pipeline: SavePipeline[tuple[int, int], tuple[int, int]] = SavePipeline(
        steps, database_worker()
    )
    polls = 0
    while partition.stored != partition.end - 1:
        polls += 1
        assert polls < 20, "the partition never caught up"
        batch = partition.poll()
        if batch is None:
            pipeline.settle()  # nothing to overlap with, as the consumer does
        else:
            pipeline.push(batch)
    pipeline.close()
    assert steps.discarded_batches == [(2, 3)]
    assert steps.applied == [(0, 1), (0, 1), (2, 3), (4, 5)]
    assert steps.saved == [(0, 1), (2, 3), (4, 5)]
    assert [(o.first_offset, o.redo, o.discarded) for o in pipeline.take_outcomes()] == [
        (0, True, False),
        (2, True, True),
        (0, False, False),
        (2, False, False),
        (4, False, False),
    ]


def test_a_rebalance_waits_for_the_save_in_flight() -> None:
    gate = threading.Event()
    steps = FakeSteps(gates={"N": gate})
    pipeline = pipeline_of(steps)
    listener = _SeekToStoredPositions(
        cast(Any, SimpleNamespace(pipeline=pipeline, gathering=Gathering(0.2, 100)))
    )
    pipeline.push("N")  # its save waits at the gate, on the worker

    def revoke() -> None:  # as kafka-python's IO thread calls it
        listener.on_partitions_revoked([])
        steps.events.append("revoked")

    revoker = threading.Thread(target=revoke)
    revoker.start()
    revoker.join(timeout=0.5)
    assert revoker.is_alive()  # still waiting: the save cannot have finished
    gate.set()
    revoker.join()
    assert steps.events == ["apply:N", "save:N", "committed:N", "revoked"]
    assert not pipeline.in_flight
    assert outcomes_of(pipeline) == [("N", False, False)]
    pipeline.close()


def test_an_assignment_is_taken_only_after_the_save_in_flight_settled() -> None:
    steps = FakeSteps()
    pipeline = pipeline_of(steps)
    assignment = SimpleNamespace(assigned=lambda tps: steps.events.append(f"assigned:{tps}"))
    listener = _SeekToStoredPositions(
        cast(Any, SimpleNamespace(pipeline=pipeline, assignment=assignment))
    )
    pipeline.push("N")
    listener.on_partitions_assigned([])
    assert steps.events == ["apply:N", "save:N", "committed:N", "assigned:[]"]
    pipeline.close()


def test_a_read_queued_behind_the_save_sees_what_it_stored() -> None:
    gate = threading.Event()
    steps = FakeSteps(gates={"N": gate})
    worker = database_worker()
    pipeline = SavePipeline(steps, worker)
    pipeline.push("N")
    seen = worker.submit(lambda: list(steps.stored))  # as the dedupe lookup of N+1 is
    gate.set()
    assert seen.result() == ["N"]
    pipeline.close()


def test_an_unexpected_save_error_is_raised_not_redone() -> None:
    steps = FakeSteps(fail_once={"N": RuntimeError("a bug")})
    pipeline = pipeline_of(steps)
    pipeline.push("N")
    with pytest.raises(RuntimeError, match="a bug"):
        pipeline.push("N+1")
    assert steps.events == ["apply:N", "save:N:failed"]
    assert pipeline.take_outcomes() == []
    pipeline.close()


def test_a_revoked_partition_forgets_what_was_gathered_of_it() -> None:
    """Its records were read and not applied: whoever gets it reads them again."""
    kept, revoked = TopicPartition("billing.email-sent", 1), TopicPartition("billing.email-sent", 0)
    gathering = Gathering(0.2, 100)
    for tp in (kept, revoked):
        gathering.add(tp, [Record(tp.topic, tp.partition, 0, None, b"{}")])
    pipeline = pipeline_of(FakeSteps())
    owner = SimpleNamespace(pipeline=pipeline, gathering=gathering)
    _SeekToStoredPositions(cast(Any, owner)).on_partitions_revoked([revoked])
    assert [tp for tp, _ in gathering.due(everything=True)] == [kept]
