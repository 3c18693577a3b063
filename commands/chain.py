"""The hash chain over the stored events: each link seals one event and every one
before it, in notification order.

``link = SHA-256(previous link, notification id, originator id, version, topic,
state)``, each field in a fixed-width or length-prefixed encoding, so no two
different events hash the same bytes; the first event's previous link is 32
zero bytes. The writer (``commands/chain_store.py``) computes the links of a
transaction's events in that transaction, under the events table's lock, so
the chain's order is the notification order.

Recomputing the chain from the events and comparing it with the stored links
finds the first event that is not as it was written: its state, topic,
originator or version changed, or it was moved, deleted or inserted. A rewrite
of the events *and* their links from some point on yields a chain that is
consistent again: only a head published before the rewrite (``--against``)
catches it. docs/chain.md says what the chain proves and what it does not.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple
from uuid import UUID

GENESIS = bytes(32)
_NUMBERS = struct.Struct(">QQI")
_LENGTH = struct.Struct(">Q")


class ChainedEvent(NamedTuple):
    """The stored fields a link seals."""

    notification_id: int
    originator_id: UUID
    originator_version: int
    topic: str
    state: bytes


class Link(NamedTuple):
    notification_id: int
    hash: bytes


def link(previous: bytes, event: ChainedEvent) -> bytes:
    topic = event.topic.encode("utf-8")
    digest = hashlib.sha256(previous)
    digest.update(_NUMBERS.pack(event.notification_id, event.originator_version, len(topic)))
    digest.update(event.originator_id.bytes)
    digest.update(topic)
    digest.update(_LENGTH.pack(len(event.state)))
    digest.update(event.state)
    return digest.digest()


def links(previous: bytes, events: Iterable[ChainedEvent]) -> Iterator[Link]:
    """The links of ``events`` (in notification order) after the link ``previous``."""
    for event in events:
        previous = link(previous, event)
        yield Link(event.notification_id, previous)


@dataclass(frozen=True, slots=True)
class Head:
    """The chain up to a position: what is published, and what an export names."""

    position: int
    hash: bytes

    def __str__(self) -> str:
        return f"{self.position}:{self.hash.hex()}"

    @classmethod
    def parse(cls, text: str) -> Head:
        """``POSITION:HASH`` as printed by ``ledger audit head`` (hash in hex)."""
        position, sep, digest = text.partition(":")
        try:
            parsed = cls(int(position), bytes.fromhex(digest))
        except ValueError:
            parsed = None
        if not sep or parsed is None or parsed.position < 1 or len(parsed.hash) != 32:
            raise ValueError(f"not a chain head (POSITION:HASH, 64 hex digits): {text!r}")
        return parsed


@dataclass(frozen=True, slots=True)
class Break:
    """The first place where the stored chain and the recomputed one part."""

    position: int
    why: str


@dataclass(slots=True)
class Walk:
    """What a walk over the chain found: how far it is intact, and where it broke."""

    checked: int = 0
    head: Head | None = None
    broken: Break | None = None
    #: ``--against``: whether the published head was found in today's chain.
    against_found: bool = False


def walk(
    events: Iterable[ChainedEvent], stored: Iterable[Link], against: Head | None = None
) -> Walk:
    """Recompute the chain over ``events`` and compare it with the ``stored`` links,
    both in notification order; stops at the first break.

    Each event must have a link at its notification id equal to the link
    recomputed from the stored link before it (so a break is reported where it
    is, not at every later link). An event without a link was inserted (or
    written before the chain and not backfilled); a link without an event
    means the event was deleted. With ``against``, the link at its position
    must be the published hash.
    """
    result = Walk()
    previous = GENESIS
    stored_links = iter(stored)
    pending = next(stored_links, None)
    for event in events:
        if pending is not None and pending.notification_id < event.notification_id:
            result.broken = Break(pending.notification_id, "a link without its event: deleted")
            return result
        if pending is None or pending.notification_id != event.notification_id:
            result.broken = Break(
                event.notification_id,
                "an event without a link: inserted after the fact, or not backfilled",
            )
            return result
        expected = link(previous, event)
        if expected != pending.hash:
            result.broken = Break(
                event.notification_id,
                "the event is not as it was chained: its state, topic, originator or"
                " version changed, it moved, or an event before it changed",
            )
            return result
        if against is not None and event.notification_id == against.position:
            if expected != against.hash:
                result.broken = Break(
                    event.notification_id,
                    "today's chain differs here from the published head: history was"
                    " rewritten (and re-chained) at or before this position",
                )
                return result
            result.against_found = True
        previous = expected
        result.checked += 1
        result.head = Head(event.notification_id, expected)
        pending = next(stored_links, None)
    if pending is not None:
        result.broken = Break(pending.notification_id, "a link without its event: deleted")
    elif against is not None and not result.against_found:
        result.broken = Break(
            against.position,
            "the published head's position is not in today's chain: events were"
            " deleted or re-appended",
        )
    return result
