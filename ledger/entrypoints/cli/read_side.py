"""The reads' way to the books: the read models' tables, how far each has applied
the ledger's history, and an account's stored events, straight from PostgreSQL.

A read is a short process whose time is mostly its imports. ``bootstrap`` wires
the whole service: the ledger application with the consumer's recorder, every
projection with its follower, Kafka; and creates their tables. A read needs none
of that. The reporting queries run over the read models' tables and how far a
read model is behind is two statements (projections.positions), all on one psycopg
connection: a read of the read models imports psycopg, the settings' fields and
the queries, never eventsourcing, pydantic-settings, Kafka, the consumers or the
command side (tests/e2e/test_cli_imports.py). A history is decoded by the ledger
application with the stock recorder, so that read imports eventsourcing too.

It creates no tables, so it also reads a standby. On a database the ledger has
not set up yet, the full wiring creates the tables first, as every command did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg.sql import Composed, Identifier

from ledger.entrypoints.cli.app import READ_MODELS, quiet_library_logs
from ledger.entrypoints.cli.loading import loading_modules
from ledger.entrypoints.embedded import configured_or_embedded_postgres
from ledger.entrypoints.settings_fields import SettingsFields, postgres_env
from projections.payment_queries import PaymentReports
from projections.positions import position_query, stored_after_query, tracking_table
from projections.queries import Reports

if TYPE_CHECKING:
    from eventsourcing.domain import DomainEvent

#: The ledger application's name (``ledger.application.Ledger.name``): its stored
#: events are in ``ledger_events``, and the read models track their position in
#: its notification log under this name.
LEDGER = "ledger"


@dataclass
class ReadSide:
    settings: SettingsFields
    database_url: str
    connection: psycopg.Connection[DictRow]
    #: The read models replayed as of a time (``projections/books_at.py``), if not live.
    scratch: str | None = None

    @classmethod
    def open(
        cls, settings: SettingsFields, announce: Callable[[str], None] | None = None
    ) -> ReadSide:
        database_url, _ = configured_or_embedded_postgres(
            settings.database_url, settings.home, announce
        )
        # One connection: a read runs its few queries one after the other. Not a
        # pool's: a pool would retry a server that cannot be reached until its
        # timeout (30 s), then say only that it timed out.
        connection = psycopg.connect(database_url, autocommit=True, row_factory=dict_row)
        return cls(settings, database_url, connection)

    @cached_property
    def schema(self) -> str:
        """The schema as eventsourcing's datastore reads ``POSTGRES_SCHEMA``: where the
        service made the tables (or the scratch schema of the books at a time)."""
        return self.scratch or self.settings.database_schema.strip() or "public"

    def rows(self, query: str, params: Iterable[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        """A reporting query (``projections.queries.Rows``) on this connection."""
        sql = query.replace("{schema}", Identifier(self.schema).as_string())
        return self.connection.execute(sql, params).fetchall()  # type: ignore[arg-type]

    def _count(self, query: Composed, params: list[Any]) -> int:
        row = self.connection.execute(query, params).fetchone()
        return int(row["n"] or 0) if row else 0

    def set_up(self) -> bool:
        """Whether the ledger's events table and every read model's tables exist (a
        read model's tables are created with its tracking table, in one transaction)."""
        names = [f"{LEDGER}_events", *map(tracking_table, READ_MODELS)]
        row = self.connection.execute(
            "SELECT count(*) AS n FROM pg_tables WHERE schemaname = %s AND tablename = ANY(%s)",
            (self.schema, names),
        ).fetchone()
        return row is not None and row["n"] == len(names)

    @cached_property
    def reports(self) -> Reports:
        # The queries name their tables; this connection runs them all.
        return Reports(self, self, self, self)

    @cached_property
    def payment_reports(self) -> PaymentReports:
        return PaymentReports(self)

    def behind(self, *read_models: str) -> dict[str, int]:
        """Stored events each read model has not applied, counted as the read models'
        pass counts them (``projections.positions``)."""
        counts = {}
        events = f"{LEDGER}_events"
        for name in read_models:
            position = self._count(*position_query(self.schema, name, LEDGER))
            counts[name] = self._count(*stored_after_query(self.schema, events, position))
        return counts

    def history(self, account_id: str) -> list[DomainEvent]:
        """The account's stored events, decoded by the ledger application. With the
        stock recorder: the consumer's (``commands.store``) adds the write side's
        tables and statements, which reading events never uses."""
        with loading_modules():
            from ledger.application import Ledger

        schema = self.settings.database_schema
        env = postgres_env(self.database_url, schema, 1, create_tables=False)
        ledger = Ledger(env={**env, "PROCESS_RECORDER_TOPIC": ""})
        try:
            return list(ledger.history(account_id))
        finally:
            ledger.close()

    def close(self) -> None:
        self.connection.close()


@contextmanager
def read_side(announce: Callable[[str], None] | None = None) -> Iterator[ReadSide]:
    reads = ReadSide.open(SettingsFields.from_environment(), announce)
    try:
        if not reads.set_up():
            _set_up()
        yield reads
    finally:
        reads.close()


def _set_up() -> None:
    """Create the ledger's and the read models' tables, as the service does."""
    from ledger.entrypoints.bootstrap import bootstrap
    from ledger.entrypoints.settings import Settings

    quiet_library_logs()
    svc = bootstrap(Settings(), need_kafka=False)
    try:
        svc.read_models()  # every read model's tables
    finally:
        svc.close()
