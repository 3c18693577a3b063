"""One save in flight: the order and failure rules of the consumer's pipeline.

A batch's save runs on a worker thread while the consumer thread polls and
prepares the next batch (decode, validate, map: pure work). PostgreSQL works
in its own process and the client releases the GIL while it waits, so the
commit of batch N overlaps the pure work of batch N+1. The rules:

- At most one save is in flight; saves are strictly sequential, in order.
- Batch N+1 is applied to the aggregates only after batch N's save
  succeeded (:meth:`SavePipeline.push` settles N first).
- If N's save failed (``IntegrityError``: a collision with another writer, or
  this consumer is stale after a rebalance; ``OperationalError``: a lock
  timeout, the database going away), nothing of N was stored:
  :meth:`BatchSteps.failed` evicts what it touched and rewinds its partition,
  and the prepared N+1 is discarded unapplied (:meth:`BatchSteps.discarded`
  rewinds its partition too): both are redone from their stored positions,
  once each. Any other error propagates: the process stops and restarts.
- Reads that must see N's writes (which dedupe keys are stored) are queued on
  the same single worker, behind N's save: the caller gives both the worker.
- A rebalance, ``caught_up`` and ``close`` settle the save in flight first:
  :meth:`SavePipeline.settle` waits for it under :attr:`SavePipeline.lock`,
  which rebalance callbacks (kafka-python's IO thread) take too.

What a batch is, and how it is applied and saved, is the caller's
(:class:`BatchSteps`; the ledger's are in ``consumers/applying.py``): this
module only orders them, so its rules are unit-tested with a fake save.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, Protocol, TypeVar

from eventsourcing.persistence import IntegrityError, OperationalError

from consumers.batch import BatchOutcome

#: A save that failed this way stored nothing: the batch is redone.
SAVE_FAILURES = (IntegrityError, OperationalError)

Prepared = TypeVar("Prepared")
Applied = TypeVar("Applied")
Prepared_contra = TypeVar("Prepared_contra", contravariant=True)


def database_worker() -> ThreadPoolExecutor:
    """The one thread that saves, and runs the reads queued behind a save."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-db")


class BatchSteps(Protocol[Prepared_contra, Applied]):
    def apply(self, prepared: Prepared_contra) -> Applied:
        """Apply to the aggregates (consumer thread; no save in flight: they are current)."""
        ...

    def save(self, applied: Applied) -> None:
        """One transaction (worker thread); raises one of ``SAVE_FAILURES`` if it stored nothing."""
        ...

    def committed(self, applied: Applied) -> BatchOutcome: ...

    def failed(self, applied: Applied, error: Exception) -> BatchOutcome:
        """Nothing was stored: evict what it touched, rewind its partition."""
        ...

    def discarded(self, prepared: Prepared_contra) -> BatchOutcome:
        """Prepared while the save before it failed: never applied; rewind its partition."""
        ...


class SavePipeline(Generic[Prepared, Applied]):
    def __init__(
        self,
        steps: BatchSteps[Prepared, Applied],
        worker: ThreadPoolExecutor,
        on_batch: Callable[[BatchOutcome], None] | None = None,
    ) -> None:
        self.steps = steps
        self.on_batch = on_batch
        # One thread (``database_worker``), so saves and the reads queued behind
        # them run one at a time, in the order submitted.
        self._worker = worker
        self._in_flight: tuple[Applied, Future[None]] | None = None
        self._settled: list[BatchOutcome] = []
        #: Held while a save is settled or started: a rebalance callback never
        #: settles in the middle of the consumer thread's doing so.
        self.lock = threading.RLock()

    @property
    def in_flight(self) -> bool:
        return self._in_flight is not None

    def push(self, prepared: Prepared) -> None:
        """Settle the save in flight; then apply this batch and start its save, or,
        if that save failed, discard this batch unapplied."""
        with self.lock:
            if not self.settle():
                self.finished(self.steps.discarded(prepared))
                return
            applied = self.steps.apply(prepared)
            self._in_flight = (applied, self._worker.submit(self.steps.save, applied))

    def settle(self) -> bool:
        """Wait for the save in flight, if any; False if it failed (and stored nothing)."""
        with self.lock:
            flight, self._in_flight = self._in_flight, None
            if flight is None:
                return True
            applied, save = flight
            try:
                save.result()
            except SAVE_FAILURES as error:
                self.finished(self.steps.failed(applied, error))
                return False
            self.finished(self.steps.committed(applied))
            return True

    def finished(self, outcome: BatchOutcome) -> None:
        """Report an outcome (a batch of this pipeline's, or a re-drive's)."""
        self._settled.append(outcome)
        if self.on_batch:
            self.on_batch(outcome)

    def take_outcomes(self) -> list[BatchOutcome]:
        """The outcomes settled since the last call, in order."""
        with self.lock:
            outcomes, self._settled = self._settled, []
        return outcomes

    def close(self) -> None:
        """The batch in flight is finished, never abandoned."""
        try:
            self.settle()
        finally:
            self._worker.shutdown(wait=True)
