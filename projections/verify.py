"""``ledger audit verify``: the read models replayed from history, compared with the
live ones row by row.

The replay writes into a scratch schema (made for the run, dropped after) by the
same single pass that keeps the live read models (projections/read_models.py),
reading the ledger's stored events; every table of every read model is then
compared with its live twin inside PostgreSQL (``EXCEPT`` over each row as
``jsonb``, so a column added to a live table by an upgrade compares by name).
A difference is reported with the table, the row's primary key and both
versions of the row. Each read model's live tracking position is reported
beside the position replayed to: a live read model behind the history differs
by its lag, which is not an error of its rows.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.sql import SQL, Composable, Identifier, Literal

from projections.base import TableProjection
from projections.read_models import ReadModels


@dataclass(frozen=True, slots=True)
class Difference:
    table: str
    key: dict[str, Any]
    live: dict[str, Any] | None
    replayed: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Position:
    read_model: str
    live: int
    replayed: int

    @property
    def behind(self) -> int:
        return max(0, self.replayed - self.live)


@dataclass(slots=True)
class Verified:
    positions: list[Position] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    replayed_events: int = 0
    tables: int = 0
    replay_seconds: float = 0.0
    compare_seconds: float = 0.0


def scratch_schema() -> str:
    return f"ledger_verify_{secrets.token_hex(4)}"


@contextmanager
def scratch(database_url: str, schema: str) -> Iterator[None]:
    """The scratch schema, made for the run and dropped after it, whatever happens."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(SQL("CREATE SCHEMA {}").format(Identifier(schema)))
    try:
        yield
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(schema)))


def verify(
    database_url: str,
    ledger_name: str,
    live: Sequence[TableProjection[Any]],
    replay: ReadModels,
    account_uuid: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> Verified:
    """Replay the whole history into ``replay`` (the read models in the scratch
    schema), then compare each of its tables with ``live``'s (only one account's
    rows with ``account_uuid``)."""
    result = Verified()
    started = time.perf_counter()
    result.replayed_events = replay.catch_up(progress)
    result.replay_seconds = time.perf_counter() - started
    replayed_by_name = {p.name: p for p in replay.projections}
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        for projection in live:
            twin = replayed_by_name[projection.name]
            result.positions.append(
                Position(
                    projection.name,
                    projection.view.max_tracking_id(ledger_name) or 0,
                    twin.view.max_tracking_id(ledger_name) or 0,
                )
            )
            for table in projection.view.tables:
                result.tables += 1
                result.differences.extend(
                    _compare(
                        conn,
                        table,
                        projection.view.datastore.schema,
                        twin.view.datastore.schema,
                        account_uuid,
                    )
                )
    result.compare_seconds = time.perf_counter() - started - result.replay_seconds
    return result


def _compare(
    conn: psycopg.Connection[dict[str, Any]],
    table: str,
    live_schema: str,
    replayed_schema: str,
    account_uuid: str | None,
) -> list[Difference]:
    key = _primary_key(conn, live_schema, table)
    live_table = SQL("{}.{}").format(Identifier(live_schema), Identifier(table))
    replayed_table = SQL("{}.{}").format(Identifier(replayed_schema), Identifier(table))
    where = _account_filter(conn, live_schema, table, account_uuid)
    rows = conn.execute(
        SQL(
            "SELECT 'live' AS side, r FROM (SELECT to_jsonb(t) AS r FROM {live} t {live_where}"
            " EXCEPT ALL SELECT to_jsonb(t) FROM {replayed} t {replayed_where}) AS d"
            " UNION ALL "
            "SELECT 'replayed', r FROM (SELECT to_jsonb(t) AS r FROM {replayed} t {replayed_where}"
            " EXCEPT ALL SELECT to_jsonb(t) FROM {live} t {live_where}) AS d"
        ).format(
            live=live_table,
            replayed=replayed_table,
            live_where=where(live_schema),
            replayed_where=where(replayed_schema),
        )
    ).fetchall()
    paired: dict[str, dict[str, Any]] = {}
    for row in rows:
        values: dict[str, Any] = row["r"]
        row_key = {column: values.get(column) for column in key}
        pair = paired.setdefault(json.dumps(row_key, sort_keys=True), {"key": row_key})
        pair[row["side"]] = values
    return [
        Difference(table, pair["key"], pair.get("live"), pair.get("replayed"))
        for _, pair in sorted(paired.items())
    ]


def _primary_key(conn: psycopg.Connection[dict[str, Any]], schema: str, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
        " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass"
        " AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
        (schema, table),
    ).fetchall()
    return [row["attname"] for row in rows]


def _account_filter(
    conn: psycopg.Connection[dict[str, Any]], schema: str, table: str, account_uuid: str | None
) -> Callable[[str], Composable]:
    """``WHERE`` one account's rows (in a given schema), by the table's account column,
    or for a document's lines by the document's."""
    if account_uuid is None:
        return lambda _schema: SQL("")
    columns = {
        row["column_name"]
        for row in conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = %s",
            (schema, table),
        ).fetchall()
    }
    account = Literal(account_uuid)
    if "account_uuid" in columns:
        return lambda _schema: SQL("WHERE t.account_uuid = {}").format(account)
    if "number" in columns:
        return lambda in_schema: SQL(
            "WHERE t.number IN (SELECT number FROM {}.documents WHERE account_uuid = {})"
        ).format(Identifier(in_schema), account)
    raise ValueError(f"read model table {table!r} names no account: cannot verify one account")
