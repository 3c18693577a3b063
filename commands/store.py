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
- ``ledger_parked``: facts for an account that is not open yet (``early``) and
  replayed dead letters (``replay``), waiting to be re-driven by the consumer
  (``consumers/parking.py``). Parked in the batch's transaction, so parking is
  as durable as the offset that moved past the record; settled (deleted, or
  kept with a new reason) in the transaction of the re-drive's events.
- ``ledger_accounts``: the account ids the ledger holds, for the closer.
- ``ledger_contact_versions``: every contact change applied, by (account,
  contact, version), with its event time, billable reasons and the ledger
  event that recorded it. It decides whether an incoming change is newer,
  and counts billable contacts as of a renewal instant, without holding
  millions of contacts in the aggregate; every row is also in the event's
  payload, so replaying history rebuilds it.

The hook is ``_insert_events``, a private method of eventsourcing 9.5.x (the
library's own searchable-timestamps example overrides it); a test fails if
it stops being called (tests/integration/test_store.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.postgres import PostgresProcessRecorder
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composable, Composed, Identifier
from psycopg.sql import Literal as SQLLiteral

from commands.models import Origin


class DedupeKeys(NamedTuple):
    """The upstream messages one ledger event applied, and that event.

    One row each in ``ledger_dedupe``; grouped because a batch's emails of one
    account are applied by one event: the hot path builds one of these per
    account, not one row object per email.
    """

    account_id: str
    originator_id: UUID
    originator_version: int
    origins: Sequence[Origin]


class ContactRow(NamedTuple):
    account_id: str
    contact_id: str
    version: int
    changed_at: datetime
    counted_from: datetime
    reasons: list[str]
    deleted: bool
    originator_id: UUID
    originator_version: int


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    topic: str
    partition: int
    offset: int
    reason: str
    key: bytes | None
    payload: bytes


@dataclass(frozen=True, slots=True)
class ParkedRow:
    """A fact kept in ``ledger_parked`` until its account opens (or a replayed dead letter)."""

    account_id: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    payload: bytes
    #: The fact's CloudEvent ``time``; None for a replayed letter not decoded yet.
    event_time: datetime | None
    reason: str
    kind: Literal["early", "replay"] = "early"
    #: The dead letter a replayed row came from.
    dead_letter_id: int | None = None
    id: int = 0  # assigned by the table; known once read back


@dataclass(frozen=True, slots=True)
class StillParked:
    """A parked row that a re-drive found still waiting for its account: kept, same id."""

    id: int
    account_id: str
    event_time: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class Redriven:
    """What a re-drive transaction does to the parked rows it took.

    ``settled`` rows were applied, found duplicate or dead-lettered: deleted.
    ``still_parked`` rows keep waiting, as ``early``. Both must match exactly the
    rows there, or the transaction rolls back: another writer re-drove them first.
    """

    settled: Sequence[int]
    still_parked: Sequence[StillParked] = ()


class ParkedRowsGone(IntegrityError):
    """The parked rows a re-drive took are no longer all there: another writer
    settled them first. Nothing of this re-drive is stored."""


@dataclass(frozen=True, slots=True)
class AccountRow:
    account_id: str
    originator_id: UUID


#: COPY's text format escapes these four characters in a value.
_COPY_SPECIAL = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_value(value: str | None) -> str:
    return "\\N" if value is None else value.translate(_COPY_SPECIAL)


def dedupe_copy_text(dedupe: Sequence[DedupeKeys]) -> str:
    """The rows of ``ledger_dedupe`` in COPY's text format, one line per message.

    Formatted in bulk (psycopg's ``write_row`` costs ~1.5 us a row, a third of
    the transaction's client time): each line is the event's columns, formatted
    once per event, and the message's. Upstream values are not escaped line by
    line; instead, counting tabs, newlines, carriage returns and backslashes in
    the result proves that none of them held a character COPY would read
    differently. If one did, the text is built again with every value escaped.
    """
    lines: list[str] = []
    tabs = nulls = 0
    for account_id, originator_id, version, origins in dedupe:
        head = f"{account_id}\t{originator_id}\t{version}\t"
        for source, event_id, _topic, _partition, _offset, message_id in origins:
            if message_id is None:  # only the account commands: an email has one
                nulls += 1
                lines.append(f"{head}{source}\t{event_id}\t\\N\n")
            else:
                lines.append(f"{head}{source}\t{event_id}\t{message_id}\n")
        tabs += 5 * len(origins)
    text = "".join(lines)
    if (
        text.count("\t") == tabs
        and text.count("\n") == len(lines)
        and text.count("\\") == nulls
        and "\r" not in text
    ):
        return text
    return "".join(
        "\t".join(
            (
                _copy_value(account_id),
                str(originator_id),
                str(version),
                _copy_value(origin.source),
                _copy_value(origin.event_id),
                _copy_value(origin.message_id),
            )
        )
        + "\n"
        for account_id, originator_id, version, origins in dedupe
        for origin in origins
    )


class LedgerRecorder(PostgresProcessRecorder):
    def __init__(self, datastore: Any, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        schema = Identifier(self.datastore.schema)
        # The library's statement with the events array sent in binary: psycopg's
        # text dumper escapes every byte of every event's state in Python (a
        # batch is hundreds of events of ~2 KB); the binary one copies them.
        self.insert_events_statement = SQL(
            "INSERT INTO {schema}.{table} AS t ("
            "originator_id, originator_version, topic, state) "
            "SELECT originator_id, originator_version, topic, state "
            "FROM unnest(%b::{schema}.{stored_event_type}[]) "
            "RETURNING notification_id"
        ).format(
            schema=schema,
            table=Identifier(self.events_table_name),
            stored_event_type=Identifier(self.stored_event_type_name),
        )
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
                SQL(
                    "CREATE INDEX IF NOT EXISTS ledger_dedupe_message_idx "
                    "ON {} (account_id, message_id)"
                ).format(self.dedupe_table),
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
                # Added with parking: tables created before it get the columns here.
                # Only when missing: ALTER TABLE takes its lock even when there is
                # nothing to add, and a CLI starting beside a writing consumer must
                # not queue behind (or deadlock with) a batch.
                SQL(
                    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM information_schema.columns "
                    "WHERE table_schema = {} AND table_name = 'ledger_dead_letters' "
                    "AND column_name = 'replayed_at') THEN "
                    "ALTER TABLE {} ADD COLUMN replayed_at timestamptz, "
                    "ADD COLUMN parked_id bigint; "
                    "END IF; END $$"
                ).format(SQLLiteral(self.datastore.schema), self.dead_letter_table),
                SQL(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    'id bigserial PRIMARY KEY, account_id text COLLATE "C" NOT NULL, '
                    "topic text NOT NULL, kafka_partition int NOT NULL, "
                    "kafka_offset bigint NOT NULL, key bytea, payload bytea NOT NULL, "
                    "event_time timestamptz, reason text NOT NULL, "
                    "kind text NOT NULL CHECK (kind IN ('early', 'replay')), "
                    "dead_letter_id bigint, parked_at timestamptz NOT NULL DEFAULT now())"
                ).format(self.parked_table),
                SQL(
                    "CREATE INDEX IF NOT EXISTS ledger_parked_account_idx ON {} (account_id)"
                ).format(self.parked_table),
            ]
        )
        self.hook_calls = 0

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """The library's insert, without psycopg's pipeline mode.

        With a batch-sized payload (a few MB: thousands of dedupe keys and
        hundreds of events) a pipelined transaction hangs here: the client waits
        for results while the server still waits for the rest of the query
        (reproduced with psycopg 3.3.9, libpq 15 and 18, over a unix socket).
        Batching makes the pipeline's round-trip saving irrelevant anyway.
        Same steps, same order, same errors: tracking and side tables first
        (``_insert_events``), then the table lock and the events.
        """
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._insert_events(curs, stored_events, **kwargs)
            if not stored_events:
                return None
            self._insert_stored_events(curs, stored_events, **kwargs)
            return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        super()._insert_events(curs, stored_events, **kwargs)
        self.hook_calls += 1
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
        parked: Sequence[ParkedRow] = kwargs.get("parked", ())
        if parked:
            with curs.copy(
                SQL(
                    "COPY {} (account_id, topic, kafka_partition, kafka_offset, key, payload, "
                    "event_time, reason, kind, dead_letter_id) FROM STDIN"
                ).format(self.parked_table)
            ) as copy:
                for fact in parked:
                    copy.write_row(
                        (
                            fact.account_id,
                            fact.topic,
                            fact.partition,
                            fact.offset,
                            fact.key,
                            fact.payload,
                            fact.event_time,
                            fact.reason,
                            fact.kind,
                            fact.dead_letter_id,
                        )
                    )
        redriven: Redriven | None = kwargs.get("redriven")
        if redriven is not None:
            self._settle_parked(curs, redriven)

    def _settle_parked(self, curs: Cursor[DictRow], redriven: Redriven) -> None:
        """Delete the re-driven rows and update those still waiting: all of them or
        nothing, so that two re-drives of one row cannot both commit."""
        if redriven.settled:
            curs.execute(
                SQL("DELETE FROM {} WHERE id = ANY(%s)").format(self.parked_table),
                (list(redriven.settled),),
            )
            if curs.rowcount != len(redriven.settled):
                raise ParkedRowsGone(
                    f"{len(redriven.settled) - curs.rowcount} of {len(redriven.settled)}"
                    " re-driven parked rows were settled by another writer"
                )
        still = redriven.still_parked
        if still:
            curs.execute(
                SQL(
                    "UPDATE {} AS p SET kind = 'early', account_id = s.account_id, "
                    "event_time = s.event_time, reason = s.reason "
                    "FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::text[]) "
                    "AS s(id, account_id, event_time, reason) WHERE p.id = s.id"
                ).format(self.parked_table),
                (
                    [r.id for r in still],
                    [r.account_id for r in still],
                    [r.event_time for r in still],
                    [r.reason for r in still],
                ),
            )
            if curs.rowcount != len(still):
                raise ParkedRowsGone(
                    f"{len(still) - curs.rowcount} of {len(still)} parked rows kept waiting"
                    " were settled by another writer"
                )

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
        that count from ``at`` or earlier (``ledger.contacts.billable_as_of``
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

    @staticmethod
    def _letters_where(
        *, topic: str | None = None, reason: str | None = None, letter_id: int | None = None
    ) -> tuple[Composed, list[Any]]:
        """The filter of the dead-letter listing and of replay: a reason matches
        when it contains the text, ignoring case."""
        clauses: list[Composable] = [SQL("TRUE")]
        params: list[Any] = []
        if letter_id is not None:
            clauses.append(SQL("id = %s"))
            params.append(letter_id)
        if topic is not None:
            clauses.append(SQL("topic = %s"))
            params.append(topic)
        if reason is not None:
            clauses.append(SQL("strpos(lower(reason), lower(%s)) > 0"))
            params.append(reason)
        return SQL(" AND ").join(clauses), params

    def dead_letters(
        self, limit: int = 100, *, topic: str | None = None, reason: str | None = None
    ) -> list[dict[str, Any]]:
        """Newest first, with the key and payload as stored and whether it was replayed."""
        where, params = self._letters_where(topic=topic, reason=reason)
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT id, topic, kafka_partition, kafka_offset, reason, key, payload, "
                    "recorded_at, replayed_at, parked_id FROM {} WHERE {} ORDER BY id DESC LIMIT %s"
                ).format(self.dead_letter_table, where),
                (*params, limit),
            )
            return [dict(row) for row in curs.fetchall()]

    def dead_letter(self, letter_id: int) -> dict[str, Any] | None:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT id, topic, kafka_partition, kafka_offset, reason, key, payload, "
                    "recorded_at, replayed_at, parked_id FROM {} WHERE id = %s"
                ).format(self.dead_letter_table),
                (letter_id,),
            )
            row = curs.fetchone()
            return dict(row) if row else None

    def dead_letter_count(self, *, topic: str | None = None, reason: str | None = None) -> int:
        where, params = self._letters_where(topic=topic, reason=reason)
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL("SELECT count(*) AS n FROM {} WHERE {}").format(self.dead_letter_table, where),
                params,
            )
            row = curs.fetchone()
            return int(row["n"]) if row else 0

    def replay_dead_letters(
        self, *, letter_id: int | None = None, topic: str | None = None, reason: str | None = None
    ) -> list[tuple[int, int]]:
        """Queue the chosen letters not replayed yet for the consumer to re-drive.

        One transaction: each letter is marked replayed (``replayed_at``, and the
        ``parked_id`` of its row) and parked as ``replay``. The marking is the
        ``UPDATE ... WHERE replayed_at IS NULL`` itself, so a letter is queued
        once however often, or however concurrently, replay is asked for.
        No Kafka I/O: the consumer that holds the letter's source partition
        re-drives it. Returns (dead letter id, parked id) pairs, oldest first.
        """
        where, params = self._letters_where(letter_id=letter_id, topic=topic, reason=reason)
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                SQL(
                    "UPDATE {} SET replayed_at = now() WHERE replayed_at IS NULL AND {} "
                    "RETURNING id, topic, kafka_partition, kafka_offset, key, payload"
                ).format(self.dead_letter_table, where),
                params,
            )
            letters = sorted(curs.fetchall(), key=lambda row: row["id"])
            if not letters:
                return []
            curs.execute(
                SQL(
                    "INSERT INTO {} (account_id, topic, kafka_partition, kafka_offset, key, "
                    "payload, reason, kind, dead_letter_id) "
                    "SELECT account_id, topic, kafka_partition, kafka_offset, key, payload, "
                    "'replayed dead letter ' || dead_letter_id, 'replay', dead_letter_id "
                    "FROM unnest(%s::text[], %s::text[], %s::int[], %s::bigint[], %s::bytea[], "
                    "%s::bytea[], %s::bigint[]) WITH ORDINALITY "
                    "AS l(account_id, topic, kafka_partition, kafka_offset, key, payload, "
                    "dead_letter_id, n) ORDER BY n RETURNING id, dead_letter_id"
                ).format(self.parked_table),
                (
                    # The key is the account id (the contract); the re-drive decodes the
                    # record and keeps the real one if it has to wait again.
                    [(r["key"] or b"").decode("utf-8", "replace") for r in letters],
                    [r["topic"] for r in letters],
                    [r["kafka_partition"] for r in letters],
                    [r["kafka_offset"] for r in letters],
                    [r["key"] for r in letters],
                    [r["payload"] for r in letters],
                    [r["id"] for r in letters],
                ),
            )
            queued = sorted((row["dead_letter_id"], row["id"]) for row in curs.fetchall())
            curs.execute(
                SQL(
                    "UPDATE {} AS d SET parked_id = q.parked_id "
                    "FROM unnest(%s::bigint[], %s::bigint[]) AS q(id, parked_id) WHERE d.id = q.id"
                ).format(self.dead_letter_table),
                ([letter for letter, _ in queued], [parked for _, parked in queued]),
            )
            return queued

    # ------------------------------------------------------------------ parked

    def parked_ready(self, partitions: Sequence[tuple[str, int]], limit: int) -> list[ParkedRow]:
        """Parked rows of these source partitions that can be re-driven now, oldest
        first: their account is open, or they are replayed dead letters."""
        return self._parked_where(
            partitions,
            SQL(
                "p.kind = 'replay' OR EXISTS "
                "(SELECT 1 FROM {} AS a WHERE a.account_id = p.account_id)"
            ).format(self.accounts_table),
            (),
            limit,
        )

    def parked_expired(
        self, partitions: Sequence[tuple[str, int]], before: datetime, limit: int
    ) -> list[ParkedRow]:
        """Rows still waiting for an account that is not open, with an event time before
        ``before``: they have waited too long and are dead-lettered."""
        return self._parked_where(
            partitions,
            SQL(
                "p.kind = 'early' AND p.event_time < %s AND NOT EXISTS "
                "(SELECT 1 FROM {} AS a WHERE a.account_id = p.account_id)"
            ).format(self.accounts_table),
            (before,),
            limit,
        )

    def _parked_where(
        self,
        partitions: Sequence[tuple[str, int]],
        condition: Composable,
        params: Sequence[Any],
        limit: int,
    ) -> list[ParkedRow]:
        if not partitions:
            return []
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT p.id, p.account_id, p.topic, p.kafka_partition, p.kafka_offset, "
                    "p.key, p.payload, p.event_time, p.reason, p.kind, p.dead_letter_id "
                    "FROM {} AS p JOIN unnest(%s::text[], %s::int[]) AS h(topic, kafka_partition) "
                    "ON p.topic = h.topic AND p.kafka_partition = h.kafka_partition "
                    "WHERE {} ORDER BY p.id LIMIT %s"
                ).format(self.parked_table, condition),
                ([t for t, _ in partitions], [p for _, p in partitions], *params, limit),
            )
            return [
                ParkedRow(
                    account_id=row["account_id"],
                    topic=row["topic"],
                    partition=row["kafka_partition"],
                    offset=row["kafka_offset"],
                    key=row["key"],
                    payload=row["payload"],
                    event_time=row["event_time"],
                    reason=row["reason"],
                    kind=row["kind"],
                    dead_letter_id=row["dead_letter_id"],
                    id=row["id"],
                )
                for row in curs.fetchall()
            ]

    def parked_count(self) -> int:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(SQL("SELECT count(*) AS n FROM {}").format(self.parked_table))
            row = curs.fetchone()
            return int(row["n"]) if row else 0

    def parked_by_account(self, account_id: str | None = None) -> list[dict[str, Any]]:
        """Per account: facts waiting, the oldest event time, since when, from which topics."""
        where, params = (SQL("account_id = %s"), [account_id]) if account_id else (SQL("TRUE"), [])
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT account_id, count(*) AS facts, min(event_time) AS oldest_event_time, "
                    "min(parked_at) AS parked_since, "
                    "string_agg(DISTINCT topic, ', ' ORDER BY topic) AS topics, "
                    "count(*) FILTER (WHERE kind = 'replay') AS replays_queued "
                    "FROM {} WHERE {} GROUP BY account_id ORDER BY min(id)"
                ).format(self.parked_table, where),
                params,
            )
            return [dict(row) for row in curs.fetchall()]

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
        """Which ledger event billed an upstream message (e.g. an email's message id)."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT source, event_id, account_id, message_id, originator_id, "
                    "originator_version, recorded_at FROM {} "
                    "WHERE account_id = %s AND (message_id = %s OR event_id = %s)"
                ).format(self.dedupe_table),
                (account_id, message_id, message_id),
            )
            return [dict(row) for row in curs.fetchall()]
