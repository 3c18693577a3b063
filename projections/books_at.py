"""The books at a time, on both axes, replayed from the stored events.

``--known-at T`` (recording time): the events the ledger had recorded by T,
so the figures it showed then. ``--as-of T`` (business time): every event
known now whose business time (``effective_at``) is by T, so what was true
then, late reports included. Both together: what the ledger knew at one time
about another.

One account's events are replayed, filtered, by the read models' own pass
into a scratch schema made for the question and dropped after it, and the
ordinary reports read that schema: the figures are the read models' rules
applied to the history, never a projection's snapshot. An event's business
time is that of its batch (the latest email of a batch, all in one month): a
time inside a month can leave out a batch's earlier emails; a month's end,
the question auditors ask, is exact.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from ledger.opening import account_uuid
from projections.read_models import ReadModels
from projections.verify import scratch

#: Read models in an empty schema (``Services.replayed_read_models``), and their closer.
ReplayFactory = Callable[[str], tuple[ReadModels, Callable[[], None]]]


def recorded_by(as_of: datetime | None, known_at: datetime | None) -> Callable[[Any], bool]:
    """Which events the books at these times hold."""

    def keep(event: Any) -> bool:
        if known_at is not None and event.timestamp > known_at:
            return False
        if as_of is None:
            return True
        if getattr(event, "effective_at", event.timestamp) > as_of:
            return False
        # A proforma is dated by the period it bills (its start), but exists from its
        # issue: the documents as of a time hold none issued after it.
        issued = getattr(getattr(event, "proforma", None), "document", None)
        return issued is None or issued.issued_on <= as_of.date()

    return keep


@contextmanager
def books_at(
    database_url: str,
    replayed: ReplayFactory,
    account_id: str,
    as_of: datetime | None,
    known_at: datetime | None,
) -> Iterator[str]:
    """The scratch schema holding one account's read models at those times."""
    schema = f"ledger_at_{secrets.token_hex(4)}"
    with scratch(database_url, schema):
        replay, close = replayed(schema)
        try:
            replay.originator_id = account_uuid(account_id)
            replay.keep = recorded_by(as_of, known_at)
            replay.catch_up()
            yield schema
        finally:
            close()
