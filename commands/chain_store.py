"""The hash chain's table: written with the events, read by the auditors' commands.

Part of :class:`commands.store.LedgerRecorder` (a mixin, as ``parked.py``).
``ledger_chain`` holds one link per stored event, keyed by its notification
id (``commands/chain.py`` says what a link seals). The links of a
transaction's events are written in that transaction, after its events, while
it holds the events table's lock: no other transaction can insert events
until it commits, so the chain's order is the notification order, and the
link before a transaction's first event is the last one stored.

Events stored before the chain existed are linked by ``ledger audit backfill``
(a one-off, logged). A writer that finds events without links before its own
(that command not run yet) links them first, in its transaction: the chain
never skips an event, whatever the order of the upgrade's steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import structlog
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow, TupleRow, tuple_row
from psycopg.sql import SQL, Composed, Identifier

from commands.chain import GENESIS, ChainedEvent, Head, Link, Walk, links, walk

log = structlog.get_logger(__name__)

#: Rows read per round trip when walking or backfilling the chain.
PAGE = 5000
#: The bounds of a notification id (``bigserial``): a walk starts at the lowest, so an
#: event forged with an id of 0 or below is read, and found without a link.
LOWEST, HIGHEST = -(2**63), 2**63 - 1


class ChainRecorder:
    datastore: PostgresDatastore
    events_table_name: str

    def chain_statements(self) -> list[Composed]:
        return [
            SQL(
                "CREATE TABLE IF NOT EXISTS {} ("
                "notification_id bigint PRIMARY KEY, hash bytea NOT NULL)"
            ).format(self.chain_table)
        ]

    @property
    def chain_table(self) -> Composed:
        return SQL("{}.{}").format(Identifier(self.datastore.schema), Identifier("ledger_chain"))

    @property
    def _events(self) -> Composed:
        return SQL("{}.{}").format(
            Identifier(self.datastore.schema), Identifier(self.events_table_name)
        )

    def _insert_links(
        self, curs: Cursor[DictRow], stored: Sequence[StoredEvent], ids: Sequence[int]
    ) -> None:
        """Link this transaction's events (it holds the events table's lock)."""
        first = ids[0]
        previous, unlinked_from = self._chain_end(curs, first)
        if unlinked_from is not None:
            previous, behind = self._link_from(curs, previous, unlinked_from, first)
            log.warning("chain_linked_events_stored_before_it", events=behind)
        events = [
            ChainedEvent(nid, e.originator_id, e.originator_version, e.topic, e.state)  # type: ignore[arg-type]
            for nid, e in zip(ids, stored, strict=True)
        ]
        self._write_links(curs, previous, events)

    def _link_from(
        self, curs: Cursor[DictRow], previous: bytes, start: int, stop: int
    ) -> tuple[bytes, int]:
        """Link the stored events from ``start`` to below ``stop``, a page a time (read
        by a second cursor of the same transaction, while ``curs`` copies the links)."""
        count = 0
        with curs.connection.cursor(row_factory=tuple_row) as reader:
            for page in self._event_pages(reader, start, stop):
                previous = self._write_links(curs, previous, page)
                count += len(page)
        return previous, count

    def _chain_end(self, curs: Cursor[DictRow], before: int) -> tuple[bytes, int | None]:
        """The last link, and where the events without a link start (if any) below
        ``before``."""
        curs.execute(
            SQL(
                "SELECT c.notification_id, c.hash, "
                "(SELECT max(notification_id) FROM {} WHERE notification_id < %s) AS latest "
                "FROM (SELECT NULL) AS one LEFT JOIN "
                "(SELECT notification_id, hash FROM {} ORDER BY notification_id DESC LIMIT 1) "
                "AS c ON true"
            ).format(self._events, self.chain_table),
            (before,),
            prepare=True,
        )
        row = curs.fetchone()
        assert row is not None
        last, latest = row["notification_id"], row["latest"]
        previous = bytes(row["hash"]) if row["hash"] is not None else GENESIS
        if latest is not None and (last is None or latest > last):
            return previous, LOWEST if last is None else last + 1
        return previous, None

    def _paged(
        self, curs: Cursor[TupleRow], table: Composed, columns: str, start: int, stop: int
    ) -> Iterator[list[TupleRow]]:
        """``table``'s rows by notification id, from ``start`` to below ``stop``, a page a
        time (``columns`` first names the id)."""
        statement = SQL(
            "SELECT {} FROM {} WHERE notification_id >= %s AND notification_id < %s "
            "ORDER BY notification_id LIMIT %s"
        ).format(SQL(columns), table)
        while True:
            curs.execute(statement, (start, stop, PAGE))
            rows = curs.fetchall()
            if rows:
                yield rows
            if len(rows) < PAGE:
                return
            start = rows[-1][0] + 1

    def _event_pages(
        self, curs: Cursor[TupleRow], start: int = LOWEST, stop: int = HIGHEST
    ) -> Iterator[list[ChainedEvent]]:
        """The events a link seals, in notification order (rows as tuples: a walk reads
        millions)."""
        columns = "notification_id, originator_id, originator_version, topic, state"
        for rows in self._paged(curs, self._events, columns, start, stop):
            yield [ChainedEvent._make(row) for row in rows]

    def _write_links(
        self, curs: Cursor[DictRow], previous: bytes, events: Sequence[ChainedEvent]
    ) -> bytes:
        with curs.copy(
            SQL("COPY {} (notification_id, hash) FROM STDIN").format(self.chain_table)
        ) as copy:
            for chained in links(previous, events):
                copy.write_row(chained)
                previous = chained.hash
        return previous

    def chain_head(self) -> Head | None:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT notification_id, hash FROM {} ORDER BY notification_id DESC LIMIT 1"
                ).format(self.chain_table)
            )
            row = curs.fetchone()
        return None if row is None else Head(row["notification_id"], bytes(row["hash"]))

    def walk_chain(
        self, against: Head | None = None, progress: Callable[[int], None] | None = None
    ) -> Walk:
        """Recompute the chain from the events and compare it with the stored links,
        both read in one snapshot (a repeatable-read transaction)."""
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=tuple_row) as events,
            conn.cursor(row_factory=tuple_row) as stored,
        ):
            # This transaction only: a level set on the pooled connection would stay
            # with it, and a writer's snapshot taken before its table lock would then
            # chain onto a stale last link.
            events.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            return walk(self._all_events(events, progress), self._stored_links(stored), against)

    def _all_events(
        self, curs: Cursor[TupleRow], progress: Callable[[int], None] | None
    ) -> Iterator[ChainedEvent]:
        for page in self._event_pages(curs):
            yield from page
            if progress is not None:
                progress(len(page))

    def _stored_links(self, curs: Cursor[TupleRow]) -> Iterator[Link]:
        for rows in self._paged(curs, self.chain_table, "notification_id, hash", LOWEST, HIGHEST):
            yield from (Link._make(row) for row in rows)

    def backfill_chain(self) -> int:
        """Link every event without a link after the last one, holding the events
        table's lock (writers wait): the one-off after upgrading to a chained ledger."""
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            curs.execute(SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(self._events))
            previous, unlinked_from = self._chain_end(curs, HIGHEST)
            if unlinked_from is None:
                return 0
            return self._link_from(curs, previous, unlinked_from, HIGHEST)[1]
