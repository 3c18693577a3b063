"""The write transaction of a batch: events, Kafka positions and dedupe keys together.

``LedgerRecorder`` is eventsourcing's PostgreSQL process recorder plus two
tables written in the *same* transaction as the aggregate events and the
tracking row (the consumer's Kafka position):

- ``ledger_dedupe``: one row per upstream message applied, keyed by the
  CloudEvent ``(source, id)``, pointing at the ledger event that applied it.
  A redelivered or re-published message finds its key and is not applied
  again; an auditor follows the pointer from any email to its charge.
- ``ledger_dead_letters``: every refused message with its reason and Kafka
  coordinates, so the refusal is as durable as the offset that skipped it;
  ``replayed_at`` / ``parked_id`` once ``ledger dead-letters replay`` queued it.
- ``ledger_parked``: facts for an account that is not open yet, waiting to be
  re-driven (its rows, DDL and queries: ``commands/parked.py``).
- ``ledger_accounts``: the account ids the ledger holds, for the closer.
- ``ledger_schedule``: when the scheduler next has something to do for each
  account (a collection attempt due, a document becoming overdue), so its
  idle scan reads one index (``commands/schedule_store.py``).
- ``ledger_chain``: one SHA-256 link per stored event, sealing it and every
  event before it (``commands/chain.py``, ``commands/chain_store.py``),
  written after the events, under the events table's lock.
- ``ledger_contact_versions``: every contact change applied, by (account,
  contact, version), with its event time, billable reasons and the ledger
  event that recorded it. It decides whether an incoming change is newer,
  and counts billable contacts as of a renewal instant, without holding
  millions of contacts in the aggregate; every row is also in the event's
  payload, so replaying history rebuilds it.

The hook is ``_insert_events``, a private method of eventsourcing 9.5.x (the
library's own searchable-timestamps example overrides it); a test fails if
the library's insert stops calling it (tests/integration/test_store.py). It
and this module's other uses of the library's internals are listed, with
their reasons and the cost of removing them, in docs/library-touches.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ProgrammingError, StoredEvent
from eventsourcing.postgres import PostgresProcessRecorder
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composable, Composed, Identifier
from psycopg.sql import Literal as SQLLiteral

from commands.batch_rows import AccountRow, ContactRow, DeadLetterRow, DedupeKeys, dedupe_copy_text
from commands.chain_store import ChainRecorder
from commands.parked import ParkingRecorder, Redriven
from commands.schedule_store import ScheduleRecorder
from ledger.opening import account_uuid


class LibraryChanged(RuntimeError):
    """A library this module leans on no longer looks as it was pinned: re-check
    docs/library-touches.md against the new version before running on it."""


def binary_events_array(statement: Composed) -> Composed:
    """The library's insert statement with its events array sent in binary (``%b``).

    psycopg's text dumper escapes every byte of every event's state in Python
    (a batch is hundreds of events of ~2 KB); the binary one copies them.
    Derived from the library's own statement rather than written out again, so
    the columns and ``RETURNING`` stay the library's.
    """
    parts: list[Composable] = []
    replaced = 0
    for part in statement:
        text = part.as_string() if isinstance(part, SQL) else ""
        if "%s::" in text:
            replaced += text.count("%s::")
            parts.append(SQL(text.replace("%s::", "%b::")))
        else:
            parts.append(part)
    if replaced != 1:
        raise LibraryChanged(
            f"eventsourcing's insert_events_statement has {replaced} '%s::' parameters, not 1"
        )
    return Composed(parts)


class LedgerRecorder(ChainRecorder, ParkingRecorder, ScheduleRecorder, PostgresProcessRecorder):
    def __init__(self, datastore: Any, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        schema = Identifier(self.datastore.schema)
        self.insert_events_statement = binary_events_array(self.insert_events_statement)
        self.dedupe_table = SQL("{}.{}").format(schema, Identifier("ledger_dedupe"))
        self.dead_letter_table = SQL("{}.{}").format(schema, Identifier("ledger_dead_letters"))
        self.accounts_table = SQL("{}.{}").format(schema, Identifier("ledger_accounts"))
        self.contacts_table = SQL("{}.{}").format(schema, Identifier("ledger_contact_versions"))
        self.parked_table = SQL("{}.{}").format(schema, Identifier("ledger_parked"))
        self.sql_create_statements.extend(
            [
                # Keys are compared for equality only: the "C" collation makes
                # every index insert and lookup a byte comparison (same equality,
                # ~25% less server time per email than a libc locale).
                SQL(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    'source text COLLATE "C" NOT NULL, event_id text COLLATE "C" NOT NULL, '
                    'account_id text COLLATE "C" NOT NULL, message_id text COLLATE "C", '
                    "originator_id uuid NOT NULL, originator_version bigint NOT NULL, "
                    "recorded_at timestamptz NOT NULL DEFAULT now(), "
                    "PRIMARY KEY (source, event_id))"
                ).format(self.dedupe_table),
                # The rows of one ledger event, for ``ledger trace`` (an account's
                # rows: its stream is its originator) and an invoice line's
                # sources. Every row of an event has the same key, which a
                # B-tree stores once (deduplication): ~0.7 us a row of server
                # time, where (account_id, message_id) cost ~2 us, a third of
                # the server's work per email. Made here for a new table only:
                # on a filled one (an upgrade) the build would block the
                # consumers, so ``ledger upgrade`` builds it concurrently.
                SQL(
                    "DO $$ BEGIN IF to_regclass(quote_ident({schema})"
                    " || '.ledger_dedupe_originator_idx') IS NULL"
                    " AND NOT EXISTS (SELECT 1 FROM {table} LIMIT 1) THEN"
                    " CREATE INDEX ledger_dedupe_originator_idx"
                    " ON {table} (originator_id, originator_version); END IF; END $$"
                ).format(
                    schema=SQLLiteral(self.datastore.schema),
                    table=self.dedupe_table,
                ),
                SQL(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    "id bigserial PRIMARY KEY, topic text NOT NULL, kafka_partition int NOT NULL, "
                    "kafka_offset bigint NOT NULL, reason text NOT NULL, key bytea, "
                    "payload bytea NOT NULL, "
                    "recorded_at timestamptz NOT NULL DEFAULT now())"
                ).format(self.dead_letter_table),
                SQL(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    "account_id text PRIMARY KEY, originator_id uuid NOT NULL UNIQUE)"
                ).format(self.accounts_table),
                SQL(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    'account_id text COLLATE "C" NOT NULL, contact_id text COLLATE "C" NOT NULL, '
                    "version bigint NOT NULL, changed_at timestamptz NOT NULL, "
                    "counted_from timestamptz NOT NULL, "
                    "reasons text[] NOT NULL, deleted boolean NOT NULL, "
                    "originator_id uuid NOT NULL, originator_version bigint NOT NULL, "
                    "PRIMARY KEY (account_id, contact_id, version))"
                ).format(self.contacts_table),
                *self.parking_statements(),
                *self.chain_statements(),
                *self.schedule_statements(),
            ]
        )

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """The library's insert (``PostgresApplicationRecorder.insert_events``,
        eventsourcing 9.5.6), without psycopg's pipeline mode and without ``@retry``.

        Pipeline: psycopg refuses COPY in pipeline mode ("COPY cannot be used
        in pipeline mode"), and the dedupe keys and contact versions are
        written with COPY (the hot path's cheapest insert). A pipelined
        transaction with a batch-sized payload (a few MB: thousands of dedupe
        keys and hundreds of events) was also seen to hang: the client waits
        for results while the server still waits for the rest of the query
        (psycopg 3.3.9, libpq 15 and 18, over a unix socket). Batching makes the
        pipeline's round-trip saving irrelevant anyway.
        Same steps, same order, same errors: tracking and side tables first
        (``_insert_events``), then the table lock and the events; then, still
        under the lock, the events' links in the hash chain.

        Retry: not restored on purpose. Every caller redoes a failed save itself,
        from the store rather than from the events it decided before the failure:
        the consumer evicts, rewinds to its stored position and redoes the batch
        (``redoing_batch_after_database_error``), a re-drive likewise, and the
        closer, the CLI and the scheduler stop with the error (restart, don't
        limp). The library's ten attempts with a 10 s lock timeout, or a 30 s
        pool wait each in an outage, would hold the save in flight for minutes,
        and a rebalance waits for that save. Also dropped: the
        ``POSTGRES_ENABLE_DB_FUNCTIONS`` branch, whose insert writes no Tracking
        and takes no table lock; the ledger keeps those functions off anyway.
        docs/library-touches.md lists this and every other use of a library's
        internals; tests/unit/test_library_touches.py fails when the pinned
        original changes.
        """
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._insert_events(curs, stored_events, **kwargs)
            if not stored_events:
                return None
            self._insert_stored_events(curs, stored_events, **kwargs)
            ids = self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
            if not ids:
                raise ProgrammingError("the events were stored without notification ids")
            self._insert_links(curs, stored_events, ids)  # under the events table's lock
            return ids

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        super()._insert_events(curs, stored_events, **kwargs)  # the Kafka position (Tracking)
        dedupe: Sequence[DedupeKeys] = kwargs.get("dedupe", ())
        if dedupe:
            # COPY, not INSERT ... ON CONFLICT: a key already there means another
            # writer applied the message meanwhile, and the whole batch is redone.
            with curs.copy(
                SQL(
                    "COPY {} (account_id, originator_id, originator_version, "
                    "source, event_id, message_id) FROM STDIN"
                ).format(self.dedupe_table)
            ) as copy:
                copy.write(dedupe_copy_text(dedupe))
        contacts: Sequence[ContactRow] = kwargs.get("contacts", ())
        if contacts:
            with curs.copy(
                SQL(
                    "COPY {} (account_id, contact_id, version, changed_at, counted_from, reasons, "
                    "deleted, originator_id, originator_version) FROM STDIN"
                ).format(self.contacts_table)
            ) as copy:
                # As text, converted here: psycopg's datetime, list and UUID dumpers
                # cost more than the formatting (one row per applied change).
                contact_ids: dict[UUID, str] = {}
                for row in contacts:
                    text_id = contact_ids.get(row.originator_id)
                    if text_id is None:
                        text_id = contact_ids[row.originator_id] = str(row.originator_id)
                    copy.write_row(
                        (
                            row.account_id,
                            row.contact_id,
                            row.version,
                            row.changed_at.isoformat(),
                            row.counted_from.isoformat(),
                            "{" + ",".join(row.reasons) + "}",  # fixed names: no quoting needed
                            "t" if row.deleted else "f",
                            text_id,
                            row.originator_version,
                        )
                    )
        dead: Sequence[DeadLetterRow] = kwargs.get("dead_letters", ())
        if dead:
            curs.executemany(
                SQL(
                    "INSERT INTO {} (topic, kafka_partition, kafka_offset, reason, key, payload) "
                    "VALUES (%s, %s, %s, %s, %s, %s)"
                ).format(self.dead_letter_table),
                [(d.topic, d.partition, d.offset, d.reason, d.key, d.payload) for d in dead],
            )
        accounts: Sequence[AccountRow] = kwargs.get("accounts", ())
        if accounts:
            curs.executemany(
                SQL("INSERT INTO {} (account_id, originator_id) VALUES (%s, %s)").format(
                    self.accounts_table
                ),
                [(a.account_id, a.originator_id) for a in accounts],
            )
        self._insert_parked(curs, kwargs.get("parked", ()))
        self._insert_schedule(curs, kwargs.get("schedule", ()))
        redriven: Redriven | None = kwargs.get("redriven")
        if redriven is not None:
            self._settle_parked(curs, redriven)

    # ------------------------------------------------------------------ reads

    def known_keys(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these upstream (source, id) keys were applied already.

        One statement per distinct ``source`` (a batch usually has one or a
        few), the ids sent as one JSON array (``json.dumps`` is C; psycopg's
        array dumpers handle every element in Python). The LATERAL ... LIMIT 1 makes it one
        primary-key probe per id whatever the planner's statistics say: a join
        or ``= ANY`` is planned as a scan of the whole table once it is large,
        so every batch would cost more than the one before.
        """
        by_source: dict[str, list[str]] = {}
        for source, event_id in keys:
            ids = by_source.get(source)
            if ids is None:
                ids = by_source[source] = []
            ids.append(event_id)
        if not by_source:
            return set()
        known: set[tuple[str, str]] = set()
        statement = SQL(
            "SELECT d.event_id FROM jsonb_array_elements_text(%s::jsonb) AS k(event_id) "
            "CROSS JOIN LATERAL (SELECT event_id FROM {} "
            "WHERE source = %s AND event_id = k.event_id LIMIT 1) AS d"
        ).format(self.dedupe_table)
        with self.datastore.transaction(commit=False) as curs:
            for source, ids in by_source.items():
                curs.execute(statement, (json.dumps(ids, ensure_ascii=False), source))
                known.update((source, row["event_id"]) for row in curs.fetchall())
        return known

    def latest_contacts(
        self, pairs: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[int, bool]]:
        """The stored (version, billable) of each (account, contact): one index probe each."""
        if not pairs:
            return {}
        accounts = [a for a, _ in pairs]
        contacts = [c for _, c in pairs]
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT DISTINCT k.account_id, k.contact_id, v.version, v.billable "
                    "FROM unnest(%b::text[], %b::text[]) AS k(account_id, contact_id) "
                    "CROSS JOIN LATERAL (SELECT version, cardinality(reasons) > 0 AS billable "
                    "FROM {} WHERE account_id = k.account_id AND contact_id = k.contact_id "
                    "ORDER BY version DESC LIMIT 1) AS v"
                ).format(self.contacts_table),
                (accounts, contacts),
            )
            return {
                (row["account_id"], row["contact_id"]): (row["version"], row["billable"])
                for row in curs.fetchall()
            }

    def billable_contacts(self, account_id: str, at: datetime) -> dict[str, list[str]]:
        """Contacts billable at ``at`` and what made each billable.

        Each contact's state then is its highest version among the changes
        that count from ``at`` or earlier (``ledger.contacts.billable.billable_as_of``
        over the history gives the same answer; a test holds them equal).
        """
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT contact_id, reasons FROM ("
                    "SELECT DISTINCT ON (contact_id) contact_id, reasons FROM {} "
                    "WHERE account_id = %s AND counted_from <= %s "
                    "ORDER BY contact_id, version DESC) AS latest "
                    "WHERE cardinality(reasons) > 0 ORDER BY contact_id"
                ).format(self.contacts_table),
                (account_id, at),
            )
            return {row["contact_id"]: list(row["reasons"]) for row in curs.fetchall()}

    def billable_count(self, account_id: str, at: datetime) -> int:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT count(*) AS n FROM ("
                    "SELECT DISTINCT ON (contact_id) reasons FROM {} "
                    "WHERE account_id = %s AND counted_from <= %s "
                    "ORDER BY contact_id, version DESC) AS latest "
                    "WHERE cardinality(reasons) > 0"
                ).format(self.contacts_table),
                (account_id, at),
            )
            row = curs.fetchone()
            return int(row["n"]) if row else 0

    def existing_originators(self, originator_ids: Sequence[UUID]) -> set[UUID]:
        """Which of these aggregates have stored events (one primary-key probe each)."""
        if not originator_ids:
            return set()
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT DISTINCT originator_id FROM {}.{} WHERE originator_id = ANY(%b)"
                ).format(Identifier(self.datastore.schema), Identifier(self.events_table_name)),
                (list(originator_ids),),
            )
            return {row["originator_id"] for row in curs.fetchall()}

    def account_ids(self) -> list[str]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL("SELECT account_id FROM {} ORDER BY account_id").format(self.accounts_table)
            )
            return [row["account_id"] for row in curs.fetchall()]

    def trace_contact(self, account_id: str, contact_id: str) -> list[dict[str, Any]]:
        """Every applied version of a contact and the ledger event that recorded it."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT contact_id, version, changed_at, counted_from, reasons, deleted, "
                    "originator_id, originator_version FROM {} "
                    "WHERE account_id = %s AND contact_id = %s ORDER BY version"
                ).format(self.contacts_table),
                (account_id, contact_id),
            )
            return [dict(row) for row in curs.fetchall()]

    def trace_message(self, account_id: str, message_id: str) -> list[dict[str, Any]]:
        """Which ledger event billed an upstream message (e.g. an email's message id).

        Reads the account's rows through its stream's index: an audit read,
        proportional to the account's messages, so that ingesting one costs
        the server no index of message ids."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT source, event_id, account_id, message_id, originator_id, "
                    "originator_version, recorded_at FROM {} "
                    "WHERE originator_id = %s AND account_id = %s "
                    "AND (message_id = %s OR event_id = %s)"
                ).format(self.dedupe_table),
                (account_uuid(account_id), account_id, message_id, message_id),
            )
            return [dict(row) for row in curs.fetchall()]
