"""Micro-benchmark of the consumer's hot path: ``decode()`` of 20,000 records.

No broker, no database: the records are built in memory as the ingest
benchmark publishes them (``email.sent``) and as contact changes, then decoded
15 times; the best run is printed per record. Run it before and after a change
to the input contract (``.venv/bin/python bench/decode.py``).
"""

from __future__ import annotations

import sys
import timeit
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consumers.messages import TOPIC_TYPES, Accepted, Record, decode
from consumers.upstream_publisher import Upstream

RECORDS = 20_000
LATEST = datetime(2026, 12, 1, tzinfo=UTC)


def records(kind: str) -> list[Record]:
    upstream = Upstream(f"urn:bench:{kind}")
    start = datetime(2026, 11, 1, tzinfo=UTC)
    step = timedelta(days=28) / RECORDS
    made = []
    for i in range(RECORDS):
        if kind == "email":
            data = {"account_id": f"acct-{i % 1000:04d}", "message_id": f"<{i}@bench>"}
            message = upstream.event(
                "billing.email-sent", "email.sent", start + step * i, {**data, "route": "platform"}
            )
        else:
            data = {"account_id": f"acct-{i % 20:04d}", "contact_id": f"k{i}", "version": 1}
            message = upstream.event(
                "billing.contact-changed",
                "contact.changed",
                start + step * i,
                {**data, "email": f"k{i}@x"},
            )
        made.append(Record(message.topic, 0, i, message.key.encode(), message.value))
    return made


def main() -> None:
    for kind, types in (("email", "email_sent"), ("contact", "contact_changed")):
        batch, accepted = records(kind), TOPIC_TYPES[types]
        assert all(isinstance(decode(r, accepted, latest_time=LATEST), Accepted) for r in batch)
        best = min(
            timeit.repeat(
                lambda: [decode(r, accepted, latest_time=LATEST) for r in batch],  # noqa: B023
                number=1,
                repeat=15,
            )
        )
        print(
            f"decode {kind}: {RECORDS} records in {best * 1000:.1f} ms"
            f" = {best / RECORDS * 1e6:.2f} us/record"
        )


if __name__ == "__main__":
    main()
