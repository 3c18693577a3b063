"""The projection side of a read model: a batch of domain events -> set-based writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, Protocol, TypeVar
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from projections.view import Change, TableView

V = TypeVar("V", bound=TableView)
A = TypeVar("A", bound="AccountChange")


@dataclass(slots=True)
class AccountChange:
    """An account row's pending change, stamped with the latest event that touched it
    (its ``updated_at`` and ``version`` columns)."""

    updated_at: datetime | None = None
    version: int = 0


def account_change(changes: dict[UUID, A], event: Any, kind: type[A]) -> A:
    """The account's pending change in ``changes`` (new if none), stamped with ``event``."""
    change = changes.get(event.originator_id)
    if change is None:
        change = changes[event.originator_id] = kind()
    change.updated_at = event.timestamp
    change.version = event.originator_version
    return change


class PendingRows(Protocol):
    """A batch's effect on a read model's rows, folded per key, event by event."""

    def changes(self) -> list[Change]:
        """A few statements over arrays of rows, however many events were folded."""
        ...


class TableProjection(Projection[V], Generic[V]):
    """Subclasses define ``fold`` as a ``singledispatchmethod`` over event classes:
    what one event does to the batch's :class:`PendingRows`, which keep the
    events' sequential meaning (a value *set* by a later event replaces an
    earlier one, an amount *added* adds up) so that a batch writes exactly the
    rows its events applied one by one would.

    The classes ``fold`` is registered for are the events the read model reads
    (:meth:`reads`): the single pass decodes no other event for it.
    ``process_event`` (one event, as the library's ProjectionRunner calls it)
    is a batch of one.
    """

    view_class: ClassVar[type[TableView]]
    rows_class: ClassVar[type[PendingRows]]

    @classmethod
    def reads(cls) -> frozenset[type[Any]]:
        registry = cls.__dict__["fold"].dispatcher.registry
        return frozenset(event_class for event_class in registry if event_class is not object)

    def fold(self, domain_event: Any, rows: Any) -> None:
        raise NotImplementedError

    def writes(self, domain_events: Sequence[Any]) -> list[Change]:
        rows: Any = self.rows_class()
        fold = self.fold  # bound once: a singledispatchmethod builds a wrapper per access
        for domain_event in domain_events:
            fold(domain_event, rows)
        return list(rows.changes())

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.write(self.writes([domain_event]), tracking)
