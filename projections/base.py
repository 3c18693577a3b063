"""The projection side of a read model: domain event -> row changes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Generic, TypeVar

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from projections.view import Change, TableView

V = TypeVar("V", bound=TableView)


class TableProjection(Projection[V], Generic[V]):
    """Subclasses define ``changes`` as a ``singledispatchmethod`` over event
    classes. ``process_event`` (one event, as the library's ProjectionRunner
    calls it) and ``process_batch`` (our batched runner) both write rows and
    tracking in one transaction."""

    view_class: ClassVar[type[TableView]]

    def changes(self, domain_event: Any) -> Iterable[Change]:
        raise NotImplementedError

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.write(list(self.changes(domain_event)), tracking)

    def process_batch(self, domain_events: Iterable[Any], tracking: Tracking) -> None:
        changes: list[Change] = []
        for domain_event in domain_events:
            changes.extend(self.changes(domain_event))
        self.view.write(changes, tracking)
