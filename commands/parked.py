"""Parked facts and dead letters in PostgreSQL: the rows, the tables, and the queries.

Part of :class:`commands.store.LedgerRecorder` (a mixin, so the batch's one
transaction writes these rows with its events):

- ``ledger_parked``: facts for an account that is not open yet (kind
  ``early``) and replayed dead letters (``replay``), waiting for the consumer
  to re-drive them (``consumers/parking.py``). Written in the batch's
  transaction, so parking is as durable as the offset that moved past the
  record; settled (deleted, or kept with a new reason) in the transaction of
  the re-drive's events, all the rows taken or none.
- ``ledger_dead_letters`` gains ``replayed_at`` / ``parked_id``: a letter is
  queued for replay once, by the marking ``UPDATE`` itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from eventsourcing.persistence import IntegrityError
from eventsourcing.postgres import PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composable, Composed
from psycopg.sql import Literal as SQLLiteral


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


class ParkingRecorder:
    """The parked-facts and dead-letter side of the ledger's recorder."""

    datastore: PostgresDatastore
    accounts_table: Composed
    dead_letter_table: Composed
    parked_table: Composed

    def parking_statements(self) -> list[Composed]:
        """DDL, run after the dead-letter and accounts tables are created."""
        return [
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
            SQL("CREATE INDEX IF NOT EXISTS ledger_parked_account_idx ON {} (account_id)").format(
                self.parked_table
            ),
        ]

    def _insert_parked(self, curs: Cursor[DictRow], parked: Sequence[ParkedRow]) -> None:
        if not parked:
            return
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
