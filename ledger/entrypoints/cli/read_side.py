"""The reads' way to the books: the read models' tables, how far each has applied
the ledger's history, and an account's stored events, straight from PostgreSQL.

A read is a short process whose time is mostly its imports. ``bootstrap`` wires
the whole service: the ledger application with the consumer's recorder, every
projection with its follower, Kafka; and creates their tables. A read needs none
of that. The reporting queries run over the read models' tables, how far a read
model is behind is one count over the stored events, and a history is read with
the stock recorder. So a read imports psycopg, eventsourcing's PostgreSQL
recorders and the queries (and the ledger application for a history), never
Kafka, the consumers or the command side (tests/e2e/test_cli_imports.py).

It creates no tables, so it also reads a standby. On a database the ledger has
not set up yet, the full wiring creates the tables first, as every command did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import psycopg
from eventsourcing.postgres import PostgresDatastore, PostgresFactory
from eventsourcing.utils import Environment
from psycopg.sql import SQL, Composed, Identifier

from ledger.entrypoints.cli.app import READ_MODELS, loading_modules, quiet_library_logs
from ledger.entrypoints.embedded import configured_or_embedded_postgres
from ledger.entrypoints.settings import Settings, postgres_env
from projections.queries import Reports
from projections.view import TableView, count_stored_after, tracking_table

if TYPE_CHECKING:
    from eventsourcing.domain import DomainEvent

#: The ledger application's name (``ledger.application.Ledger.name``): its stored
#: events are in ``ledger_events``, and the read models track their position in
#: its notification log under this name.
LEDGER = "ledger"


@dataclass
class ReadSide:
    settings: Settings
    database_url: str
    env: dict[str, str]
    datastore: PostgresDatastore

    @classmethod
    def open(cls, settings: Settings, announce: Callable[[str], None] | None = None) -> ReadSide:
        database_url, _ = configured_or_embedded_postgres(
            settings.database_url, settings.home, announce
        )
        # One connection: a read runs its few queries one after the other.
        env = postgres_env(database_url, settings.database_schema, 1, create_tables=False)
        datastore = PostgresFactory(Environment(LEDGER, env)).datastore
        return cls(settings, database_url, env, datastore)

    def table(self, name: str) -> Composed:
        return SQL("{}.{}").format(Identifier(self.datastore.schema), Identifier(name))

    def set_up(self) -> bool:
        """Whether the ledger's events table and every read model's tables exist (a
        read model's tables are created with its tracking table, in one transaction).

        Asked first, on a connection of its own: the pool would retry a server that
        cannot be reached until its timeout (30 s), then say only that it timed out.
        """
        names = [f"{LEDGER}_events", *map(tracking_table, READ_MODELS)]
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tablename = ANY(%s)",
                (self.datastore.schema, names),
            ).fetchone()
        return row is not None and row[0] == len(names)

    @cached_property
    def reports(self) -> Reports:
        # The queries name their tables; any view of this schema runs them.
        view = TableView(self.datastore)
        return Reports(view, view, view, view)

    def behind(self, *read_models: str) -> dict[str, int]:
        """Stored events each read model has not applied, counted as the read models'
        pass counts them (``projections.view.count_stored_after``)."""
        counts = {}
        for name in read_models:
            view = TableView(self.datastore, tracking_table_name=tracking_table(name))
            position = view.max_tracking_id(LEDGER) or 0
            counts[name] = count_stored_after(self.datastore, f"{LEDGER}_events", position)
        return counts

    def history(self, account_id: str) -> list[DomainEvent]:
        """The account's stored events, decoded by the ledger application. With the
        stock recorder: the consumer's (``commands.store``) adds the write side's
        tables and statements, which reading events never uses."""
        with loading_modules():
            from ledger.application import Ledger

        ledger = Ledger(env={**self.env, "PROCESS_RECORDER_TOPIC": ""})
        try:
            return list(ledger.history(account_id))
        finally:
            ledger.close()

    def close(self) -> None:
        self.datastore.close()


@contextmanager
def read_side(announce: Callable[[str], None] | None = None) -> Iterator[ReadSide]:
    settings = Settings()
    reads = ReadSide.open(settings, announce)
    try:
        if not reads.set_up():
            _set_up(settings)
        yield reads
    finally:
        reads.close()


def _set_up(settings: Settings) -> None:
    """Create the ledger's and the read models' tables, as the service does."""
    from ledger.entrypoints.bootstrap import bootstrap

    quiet_library_logs()
    svc = bootstrap(settings, need_kafka=False)
    try:
        svc.reports()
    finally:
        svc.close()
