"""The eventsourcing Application that holds every account's history.

Thin on purpose: it loads, saves and answers history questions. Deciding is
the aggregates' job; batching and transactions are ``commands/``'s.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate, DomainEvent
from eventsourcing.persistence import JSONTranscoder, ProcessRecorder, Transcoder
from eventsourcing.utils import register_topic

from ledger.application.transcodings import LedgerTranscoder, register_ledger_transcodings
from ledger.contacts import account as contacts_account
from ledger.contacts.account import ContactsAccount
from ledger.emails import account as email_account
from ledger.emails.account import Account
from ledger.errors import AccountNotFound
from ledger.numbering import DocumentNumberSequence, sequence_uuid
from ledger.opening import account_uuid

#: Stored events and snapshots name their class by module ("topic"). Those stored
#: before the aggregates moved into their billing model's package still resolve.
STORED_MODULE_NAMES = {
    "ledger.account": email_account,
    "ledger.contacts_account": contacts_account,
}
for _old_name, _module in STORED_MODULE_NAMES.items():
    register_topic(_old_name, _module)


class Ledger(Application[UUID]):
    """Events go to ``ledger_events``; tracking (Kafka positions) to ``ledger_tracking``."""

    name = "ledger"
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {
        Account: 50,
        ContactsAccount: 50,
        DocumentNumberSequence: 200,
    }
    env: ClassVar[dict[str, str]] = {
        # Consumers own their partitions' accounts, so a cached aggregate is current;
        # if another writer (a closer) got there first, the save collides and the
        # batch is redone from the stored offset with the cache evicted.
        "AGGREGATE_CACHE_MAXSIZE": "20000",
        "AGGREGATE_CACHE_FASTFORWARD": "n",
    }

    def construct_recorder(self) -> ProcessRecorder:
        return self.factory.process_recorder()

    def construct_transcoder(self) -> Transcoder:
        transcoder = LedgerTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_ledger_transcodings(transcoder)

    def record(self, processing: ProcessingEvent[UUID]) -> None:
        """Save a batch's events together with its tracking position and side records.

        ``save(tracking=...)`` would collide with ``ProcessingEvent.tracking``, so
        this is what ``Application.save`` does once the events are collected, as
        the library's own ``EventSourcedProjection.process_event`` does it:
        ``_record`` (store the events, the position and the side records in one
        transaction; cache the aggregates) then ``_take_snapshots``. Not
        ``_notify``: a no-op hook in ``Application`` (eventsourcing 9.5.6) that
        the ledger does not override.
        Listed in docs/library-touches.md; tests/unit/test_library_touches.py
        fails when the pinned ``save``, ``_record`` or ``_take_snapshots`` change.
        """
        self._record(processing)
        self._take_snapshots(processing)

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        """Snapshot every aggregate a save took past a multiple of its interval, from
        the aggregate in memory: it was just saved, so its state is the stored one.

        The library's ``take_snapshot`` loads each aggregate again (its last
        snapshot and up to 49 events) to snapshot it at exactly that version:
        about half of a batch's save under a live stream. A snapshot at the
        aggregate's latest version is as good (the repository replays what
        follows any snapshot), and all of a batch's snapshots go in one write.
        Overrides a private method: docs/library-touches.md, pinned by
        tests/unit/test_library_touches.py.
        """
        if self.snapshots is None:
            return
        due: dict[UUID, Aggregate] = {}
        for event in processing_event.events:
            aggregate = processing_event.aggregates.get(event.originator_id)
            interval = self.snapshotting_intervals.get(type(aggregate))
            if interval and event.originator_version % interval == 0:
                assert isinstance(aggregate, Aggregate)  # what has an interval is one
                due[event.originator_id] = aggregate
        if due:
            self.snapshots.put([type(a).Snapshot.take(a) for a in due.values()])

    @property
    def process_recorder(self) -> ProcessRecorder:
        assert isinstance(self.recorder, ProcessRecorder)
        return self.recorder

    def get_account(self, account_id: str, version: int | None = None) -> Account | ContactsAccount:
        """The account, billed by emails (:class:`Account`) or by contacts."""
        try:
            account: Account | ContactsAccount = self.repository.get(
                account_uuid(account_id), version=version
            )
        except AggregateNotFoundError:
            raise AccountNotFound(account_id) from None
        assert isinstance(account, Account | ContactsAccount)
        return account

    def find_account(self, account_id: str) -> Account | ContactsAccount | None:
        try:
            return self.get_account(account_id)
        except AccountNotFound:
            return None

    def get_sequence(self, year: int) -> DocumentNumberSequence | None:
        try:
            sequence: DocumentNumberSequence = self.repository.get(sequence_uuid(year))
        except AggregateNotFoundError:
            return None
        assert isinstance(sequence, DocumentNumberSequence)
        return sequence

    def history(self, account_id: str) -> Iterator[DomainEvent]:
        aggregate_id = account_uuid(account_id)
        found = False
        for stored in self.events.get(aggregate_id):
            found = True
            assert isinstance(stored, DomainEvent)
            yield stored
        if not found:
            raise AccountNotFound(account_id)

    def evict(self, aggregate_ids: list[UUID]) -> None:
        cache = self.repository.cache
        if cache is None:
            return
        for aggregate_id in aggregate_ids:
            with contextlib.suppress(KeyError):  # not cached: nothing to evict
                cache.get(aggregate_id, evict=True)
