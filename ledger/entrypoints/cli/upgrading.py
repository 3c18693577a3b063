"""``ledger upgrade``: the one-off steps after installing a version whose tables
changed, each idempotent (run it again: it does what is left).

1. The dedupe table's index by ledger event (``ledger_dedupe_originator_idx``),
   built ``CONCURRENTLY``: consumers keep writing while it builds. A build that
   failed leaves an invalid index, which is dropped and built again.
2. The index it replaces (``ledger_dedupe_message_idx``), dropped concurrently.
3. The hash chain's backfill (``ledger audit backfill``): holds the events
   table's lock, so writers wait (or time out and redo their batch) meanwhile.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ledger.entrypoints.cli.app import app, log, out, services

if TYPE_CHECKING:
    import psycopg

NEW_INDEX = "ledger_dedupe_originator_idx"
OLD_INDEX = "ledger_dedupe_message_idx"


@app.command()
def upgrade() -> None:
    """Run the one-off steps after an upgrade (indexes built concurrently, the chain's
    backfill); safe to run again."""
    import psycopg
    from psycopg.sql import SQL, Identifier

    with services(write=True) as svc:
        schema = svc.settings.database_schema.strip() or "public"
        with psycopg.connect(svc.database_url, autocommit=True) as conn:
            started = time.perf_counter()
            built = _build_index(conn, schema)
            conn.execute(
                SQL("DROP INDEX CONCURRENTLY IF EXISTS {}.{}").format(
                    Identifier(schema), Identifier(OLD_INDEX)
                )
            )
            log.info(
                "dedupe_index_upgraded",
                built=built,
                seconds=round(time.perf_counter() - started, 2),
            )
        out.print(f"{NEW_INDEX}: {'built' if built else 'present'}; {OLD_INDEX}: absent")
        started = time.perf_counter()
        linked = svc.store.backfill_chain()
        log.info("chain_backfilled", events=linked, seconds=round(time.perf_counter() - started, 2))
        out.print(f"hash chain: linked {linked:,} events stored before it")


def _build_index(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> bool:
    valid = conn.execute(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = %s AND n.nspname = %s",
        (NEW_INDEX, schema),
    ).fetchone()
    if valid is not None and valid[0]:
        return False
    from psycopg.sql import SQL, Identifier

    index = SQL("{}.{}").format(Identifier(schema), Identifier(NEW_INDEX))
    if valid is not None:  # a concurrent build that failed: invalid, never used
        conn.execute(SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(index))
    conn.execute(
        SQL("CREATE INDEX CONCURRENTLY {} ON {}.{} (originator_id, originator_version)").format(
            Identifier(NEW_INDEX), Identifier(schema), Identifier("ledger_dedupe")
        )
    )
    return True
