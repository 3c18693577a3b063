"""Where a read model is in the ledger's history, as SQL over a schema's tables.

Shared by the read models' pass (through ``projections.view``) and by the CLI's
reads, which ask it on a plain psycopg connection: it imports psycopg's SQL
composition only, not eventsourcing's PostgreSQL module and its pool, which a
short read does not otherwise need (bench/cli_startup.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.sql import SQL, Composed, Identifier


def tracking_table(read_model: str) -> str:
    """Where a read model (a projection's name) keeps its position: a table of its
    own, as the library's factory names one after its environment."""
    return f"{read_model}_tracking"


def position_query(schema: str, read_model: str, application: str) -> tuple[Composed, list[Any]]:
    """The read model's position in ``application``'s notification log (NULL before its
    first event): the statement eventsourcing's ``max_tracking_id`` runs."""
    query = SQL("SELECT max(notification_id) AS n FROM {}.{} WHERE application_name = %s").format(
        Identifier(schema), Identifier(tracking_table(read_model))
    )
    return query, [application]


def stored_after_query(
    schema: str, events_table: str, position: int, topics: Sequence[str] = ()
) -> tuple[Composed, list[Any]]:
    """Stored events (of ``topics``, if given) after ``position``: counted rather than
    inferred from ids (a sequence may skip ids, and a topic filter skips events)."""
    query = SQL("SELECT count(*) AS n FROM {}.{} WHERE notification_id > %s").format(
        Identifier(schema), Identifier(events_table)
    )
    params: list[Any] = [position]
    if topics:
        query += SQL(" AND topic = ANY(%s)")
        params.append(list(topics))
    return query, params
