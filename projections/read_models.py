"""Every read model fed from one pass over the notification log.

A batch of notifications is selected once. Which read models read a stored
event is known from its topic (the class it names, resolved without decoding
its state), so an event is decoded at most once, and not at all when no read
model reads it (documents and contacts never pay for an email account's
``EmailsRecorded``). Each read model folds its events into a few set-based
statements (projections/base.py); all of them and every read model's tracking
position commit in one transaction.

Each read model keeps its own tracking table, so ``ledger`` can say how far
each one is, and a read model that was reset (or added) catches up on its own:
a batch starts after the read model furthest behind, and gives a read model
only the events after its own position.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification, Tracking
from eventsourcing.utils import resolve_topic

from ledger.application import Ledger
from projections.base import TableProjection
from projections.runner import LogFollower, count_after, select_notifications


class ReadModels(LogFollower):
    name = "read_models"

    def __init__(
        self,
        ledger: Ledger,
        projections: Sequence[TableProjection[Any]],
        batch_size: int = 1000,
        batch_scope: Callable[[], AbstractContextManager[None]] = nullcontext,
    ) -> None:
        super().__init__(ledger, batch_size)
        self.projections = tuple(projections)
        #: What each batch runs in: the cyclic collector paused, in a process that
        #: runs no consumer thread (ledger/entrypoints/bootstrap.py).
        self.batch_scope = batch_scope
        datastores = {p.view.datastore for p in self.projections}
        if len(datastores) != 1:
            raise ValueError("the read models of one pass must share one datastore")
        (self.datastore,) = datastores
        self._readers: dict[str, tuple[int, ...]] = {}
        #: Notifications each read model has applied through this object.
        self.applied = dict.fromkeys((p.name for p in self.projections), 0)
        #: The books at a time (``ledger balance --as-of``): one aggregate's events,
        #: and only those ``keep`` accepts. Neither is set for the live read models.
        self.originator_id: UUID | None = None
        self.keep: Callable[[Any], bool] | None = None

    def positions(self) -> list[int]:
        return [p.view.max_tracking_id(self.ledger.name) or 0 for p in self.projections]

    def start(self) -> int | None:
        return min(self.positions(), default=0) or None

    def behind_by_name(self) -> dict[str, int]:
        """Stored events each read model has not applied."""
        return {
            p.name: count_after(self.ledger, position)
            for p, position in zip(self.projections, self.positions(), strict=True)
        }

    def readers(self, topic: str) -> tuple[int, ...]:
        """The read models (by index) that read events of ``topic``; decided once a topic."""
        found = self._readers.get(topic)
        if found is None:
            event_class = resolve_topic(topic)
            found = self._readers[topic] = tuple(
                index
                for index, projection in enumerate(self.projections)
                if any(issubclass(event_class, read) for read in projection.reads())
            )
        return found

    def run_once(self) -> int:
        # The positions read once a batch: where it starts, and what each read model takes.
        positions = self.positions()
        notifications = select_notifications(
            self.ledger,
            min(positions, default=0),
            self.batch_size,
            originator_id=self.originator_id,
        )
        if notifications:
            self.apply(notifications, positions)
        return len(notifications)

    def apply(
        self, notifications: Sequence[Notification], positions: list[int] | None = None
    ) -> None:
        if positions is None:
            positions = self.positions()
        batches: list[list[Any]] = [[] for _ in self.projections]
        decode, keep = self.ledger.mapper.to_domain_event, self.keep
        for notification in notifications:
            event = None
            for index in self.readers(notification.topic):
                if notification.id > positions[index]:
                    if event is None:
                        event = decode(notification)
                        if keep is not None and not keep(event):
                            break
                    batches[index].append(event)
        tracking = Tracking(self.ledger.name, notifications[-1].id)
        writes = [
            (projection, projection.writes(events))
            for projection, events, position in zip(
                self.projections, batches, positions, strict=True
            )
            if position < tracking.notification_id
        ]
        with self.datastore.transaction(commit=True) as curs:
            for projection, changes in writes:
                projection.view.apply(curs, changes, tracking)
        for projection, position in zip(self.projections, positions, strict=True):
            self.applied[projection.name] += sum(n.id > position for n in notifications)

    def reset(self) -> None:
        """Empty every read model and forget its position (``projections rebuild``)."""
        for projection in self.projections:
            projection.view.reset()

    def rebuild(
        self,
        progress: Callable[[int], None] | None = None,
        batch_size: int = 5000,
    ) -> int:
        """Reset, then replay the whole history; returns the notifications read."""
        self.reset()
        default, self.batch_size = self.batch_size, batch_size
        try:
            return self.catch_up(progress)
        finally:
            self.batch_size = default
