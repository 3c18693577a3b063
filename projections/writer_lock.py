"""One writer of the projections at a time, per schema, across machines.

Two followers applying the same notifications at once can apply some of them
twice: each reads the same position, and a tracking position is refused only
when it is not greater than the stored one, so the second batch, ending
later, is accepted. A rebuild truncating tables under a running follower
deadlocks. So ``ledger serve`` (projections role), ``ledger projections
rebuild`` and the catch-up after a CLI write each hold a PostgreSQL session
advisory lock while they write projections; whoever finds it taken does
something else (waits for ``serve`` to catch up, or says who holds it).
The lock goes with the session: a process that dies releases it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

#: First key of the two-key advisory lock; the second is the schema's hash.
PROJECTIONS_LOCK_KEY = 0x1ED6


class ProjectionsBusy(Exception):
    """Another session holds the projections writer lock of this schema."""


@contextmanager
def projections_writer(database_url: str, schema: str) -> Iterator[None]:
    """Hold the projections writer lock of ``schema``; raise ProjectionsBusy if taken."""
    conn = psycopg.connect(database_url, autocommit=True)
    try:
        row = conn.execute(
            "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (PROJECTIONS_LOCK_KEY, schema)
        ).fetchone()
        if not (row and row[0]):
            raise ProjectionsBusy(schema)
        yield
    finally:
        conn.close()  # ends the session, which releases the lock
