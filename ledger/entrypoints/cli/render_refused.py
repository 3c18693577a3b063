"""The CLI's views of refused input: dead letters and the facts parked for their account
(``ledger dead-letters``, ``ledger parked``, the demo). Upstream text is escaped, never obeyed."""

from __future__ import annotations

from base64 import b64encode
from typing import Any

from ledger.entrypoints.cli.render import simple_table
from ledger.entrypoints.cli.tables import FitTable

#: Characters of a payload shown in a table (``--json`` gives it whole).
PAYLOAD_SHOWN = 100


def dead_letter_view(row: dict[str, Any]) -> dict[str, Any]:
    """A stored dead letter for people and ``--json``: key and payload as text when
    they are UTF-8 (the payload base64-encoded otherwise, as on the dead-letter topic)."""
    payload = bytes(row["payload"])
    try:
        text, encoding = payload.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = b64encode(payload).decode(), "base64"
    key = row.get("key")
    return {
        "id": row["id"],
        "recorded_at": row["recorded_at"],
        "topic": row["topic"],
        "partition": row["kafka_partition"],
        "offset": row["kafka_offset"],
        "key": bytes(key).decode("utf-8", "replace") if key is not None else None,
        "reason": row["reason"],
        "payload": text,
        "payload_encoding": encoding,
        "replayed_at": row.get("replayed_at"),
        "parked_id": row.get("parked_id"),
    }


def _shortened(text: str, limit: int = PAYLOAD_SHOWN) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"


def dead_letter_table(rows: list[dict[str, Any]], title: str = "Dead letters") -> FitTable:
    """Stored dead letters (as ``LedgerRecorder.dead_letters`` returns them), newest
    first; upstream text (key, reason, payload) is escaped, never obeyed."""
    return simple_table(
        [
            {
                "id": row["id"],
                "recorded": row["recorded_at"].isoformat(timespec="seconds"),
                "source": f"{row['topic']}:{row['partition']}@{row['offset']}",
                "key": row["key"] or "",
                "reason": row["reason"],
                "payload": _shortened(row["payload"]),
                "replayed": f"{row['replayed_at'].isoformat(timespec='seconds')}"
                f" (parked {row['parked_id']})"
                if row["replayed_at"]
                else "",
            }
            for row in map(dead_letter_view, rows)
        ],
        title=title,
    )


def parked_table(rows: list[dict[str, Any]]) -> FitTable:
    """Facts waiting for their account, per account (``LedgerRecorder.parked_by_account``)."""
    return simple_table(
        [
            {
                "account": row["account_id"],
                "facts": row["facts"],
                "oldest_event": row["oldest_event_time"].isoformat()
                if row["oldest_event_time"]
                else "",
                "parked_since": row["parked_since"].isoformat(timespec="seconds"),
                "topics": row["topics"],
                "replays_queued": row["replays_queued"],
            }
            for row in rows
        ],
        title="Parked facts",
    )
