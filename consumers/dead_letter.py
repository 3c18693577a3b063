"""Dead letters: the message format (topic ``billing.dead-letter`` by default),
the rows a batch's refusals become, and their publisher.

The message is built through the :class:`DeadLetter` model, the one its JSON
Schema is generated from and shipped under ``schemas/``
(``outbound.dead-letter.schema.json``): what is published is what is described.
"""

from __future__ import annotations

from base64 import b64encode
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

import structlog
from kafka import KafkaProducer
from pydantic import BaseModel, ConfigDict, Field

from commands.batch_rows import DeadLetterRow
from commands.handlers import Rejection
from consumers.messages import Record, RecordLike, Refused

log = structlog.get_logger(__name__)

#: Kafka's default message limit is 1 MiB; JSON-escaped payloads grow up to 6x.
MAX_DEAD_LETTER_PAYLOAD = 128 * 1024
#: The ``reason`` header is cut to this many bytes (the message carries it whole).
MAX_REASON_HEADER = 512


class DeadLetter(BaseModel):
    """A record the ledger refused, with the reason and where it came from.

    The original bytes are kept verbatim: as text when they are valid UTF-8
    (``payload_encoding`` ``"utf-8"``), otherwise base64-encoded
    (``payload_encoding`` ``"base64"``). The Kafka message key of the
    dead letter is the original key; a ``reason`` header repeats the
    reason (truncated to 512 bytes).
    """

    model_config = ConfigDict(frozen=True)

    reason: str = Field(description="Why the record was refused, e.g. the invalid field's path.")
    topic: str = Field(description="Topic the refused record was consumed from.")
    partition: int = Field(description="Partition of the refused record.")
    offset: int = Field(description="Offset of the refused record in its partition.")
    key: str | None = Field(
        description="Kafka key of the refused record (UTF-8, undecodable bytes replaced), or null."
    )
    payload: str = Field(description="The refused record's value, encoded per payload_encoding.")
    payload_encoding: Literal["utf-8", "base64"] = Field(
        description="'utf-8' when payload is the value as text, 'base64' when it was not UTF-8."
    )
    payload_truncated: bool = Field(
        description=(
            "True when the value was too large to carry whole (over 128 KiB); the full value"
            " is kept in the ledger's dead-letter table."
        )
    )
    dead_lettered_at: datetime = Field(
        description="When the ledger dead-lettered it (RFC 3339, UTC)."
    )


def dead_letter_message(record: RecordLike, reason: str) -> bytes:
    value = record.value or b""
    truncated = len(value) > MAX_DEAD_LETTER_PAYLOAD
    if truncated:
        value = value[:MAX_DEAD_LETTER_PAYLOAD]
    encoding: Literal["utf-8", "base64"] = "utf-8"
    try:
        payload = value.decode("utf-8")
    except UnicodeDecodeError:
        payload, encoding = b64encode(value).decode(), "base64"
    letter = DeadLetter(
        reason=reason,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key.decode("utf-8", "replace") if record.key is not None else None,
        payload=payload,
        payload_encoding=encoding,
        payload_truncated=truncated,
        dead_lettered_at=datetime.now(UTC),
    )
    return letter.model_dump_json().encode()


def dead_letter_rows(
    records: Sequence[RecordLike], refused: Sequence[Refused], rejections: Sequence[Rejection]
) -> list[DeadLetterRow]:
    """A batch's refusals as rows: records that failed to decode, then the messages
    of commands the domain refused (found by offset among the batch's records)."""
    rows = [_row(r.record, r.reason) for r in refused]
    if rejections:
        by_offset = {r.offset: r for r in records}
        rows += [
            _row(by_offset[origin.offset], rejection.reason)
            for rejection in rejections
            for origin in rejection.origins
        ]
    return rows


def _row(record: RecordLike, reason: str) -> DeadLetterRow:
    return DeadLetterRow(
        record.topic, record.partition, record.offset, reason, record.key, record.value or b""
    )


class DeadLetterPublisher:
    """Sends dead letters and waits for the broker to have them: called before the
    batch's transaction, never inside it (no network I/O in a transaction)."""

    def __init__(self, producer: KafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    def publish(self, rows: Sequence[DeadLetterRow]) -> None:
        if not rows:
            return
        for row in rows:
            self.producer.send(
                self.topic,
                key=row.key,
                value=dead_letter_message(
                    Record(row.topic, row.partition, row.offset, row.key, row.payload), row.reason
                ),
                headers=[("reason", row.reason.encode()[:MAX_REASON_HEADER])],
            )
            log.warning(
                "dead_lettered",
                topic=row.topic,
                partition=row.partition,
                offset=row.offset,
                reason=row.reason,
            )
        self.producer.flush()
