"""The projection side of a read model: a batch of domain events -> set-based writes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from projections.view import Change, TableView

V = TypeVar("V", bound=TableView)


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
