"""The dead-letter message format (topic ``billing.dead-letter`` by default).

The JSON that ``consumers.runner.dead_letter_message`` produces for a refused
record, described as a pydantic model so its JSON Schema can be generated and
shipped under ``schemas/`` (``outbound.dead-letter.schema.json``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


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
