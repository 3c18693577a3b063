"""The rows a batch writes besides its events (dedupe keys, contact versions,
dead letters, accounts, the accounts' next chase), and the dedupe keys in COPY's text format: the
recorder (``commands/store.py``) writes them in the batch's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

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
class AccountRow:
    account_id: str
    originator_id: UUID


class ScheduleRow(NamedTuple):
    """When the scheduler next has something to do for an account (None: nothing)."""

    account_id: str
    next_due_at: datetime | None


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
