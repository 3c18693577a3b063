"""The pure part of a partition batch: decode, split, drop duplicates; what came of it.

Nothing here touches Kafka or PostgreSQL: a batch is a function of its records,
of the keys PostgreSQL says are stored already, and of the clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from commands.models import AccountCommand, RecordContactChanges, RecordEmailsSent
from consumers.messages import Accepted, RecordLike, Refused, decode

DedupeKey = tuple[str, str]


@dataclass(frozen=True)
class TopicRoles:
    """Topic names by role (configurable), and which event types each accepts."""

    by_topic: dict[str, frozenset[str]]
    priority: frozenset[str] = frozenset()  # consumed first: the accounts topic
    #: Topics whose messages are idempotent by their own version (contact changes):
    #: no dedupe keys are looked up or stored for them.
    versioned: frozenset[str] = frozenset()

    @property
    def topics(self) -> list[str]:
        return sorted(self.by_topic)


@dataclass
class BatchOutcome:
    records: int = 0
    applied: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    #: Facts for accounts not open yet, kept in ``ledger_parked``.
    parked: int = 0
    accounts: int = 0
    #: Nothing of the batch was stored; its records are consumed again.
    redo: bool = False
    #: Redone without being applied: prepared while the save before it failed.
    discarded: bool = False
    #: A re-drive of parked facts (``consumers/parking.py``), not a consumed batch.
    redriven: bool = False
    topic: str = ""
    partition: int = -1
    first_offset: int = -1
    last_offset: int = -1

    def nothing_stored(self) -> None:
        """The attempt's save failed: the redo will count its messages."""
        self.redo = True
        self.applied = self.duplicates = self.dead_letters = self.parked = 0


@dataclass
class PartitionBatch:
    """Decode, split, drop in-batch duplicates."""

    records: Sequence[RecordLike]
    accepted_types: frozenset[str]
    #: The latest event time accepted (the consumer's clock plus the allowed skew).
    latest_time: datetime
    #: Decoded and valid, first of their dedupe key in the batch: what is mapped.
    accepted: list[Accepted] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    duplicates: int = 0

    #: The dedupe key of each accepted message, in the same order.
    keys: list[DedupeKey] = field(default_factory=list)

    def __post_init__(self) -> None:
        seen: set[DedupeKey] = set()
        accepted_types, latest_time = self.accepted_types, self.latest_time
        for record in self.records:
            result = decode(record, accepted_types, latest_time=latest_time)
            if isinstance(result, Refused):
                self.refused.append(result)
                continue
            event = result.event
            key = (event["source"], event["id"])  # Accepted.dedupe_key, inlined
            if key in seen:
                self.duplicates += 1
            else:
                seen.add(key)
                self.keys.append(key)
                self.accepted.append(result)

    def drop_known(
        self, commands: list[AccountCommand], known: set[DedupeKey]
    ) -> list[AccountCommand]:
        """The batch's commands (``to_commands(self.accepted)``) without the messages
        whose keys are stored already: exactly what mapping only the fresh messages
        gives, without mapping the batch a second time.

        ``to_commands`` places an account's grouped command where its first message
        was; when that message is a stored duplicate, the command moves to where its
        first fresh one is, so the order of commands (and of the events they store)
        is the same as if the duplicates had never been consumed.
        """
        if not known:
            return commands
        self.duplicates += sum(1 for key in self.keys if key in known)
        rank = {key: index for index, key in enumerate(self.keys)}
        kept: list[tuple[int, AccountCommand]] = []
        for cmd in commands:
            if isinstance(cmd, RecordEmailsSent | RecordContactChanges):
                name = "emails" if isinstance(cmd, RecordEmailsSent) else "changes"
                items = getattr(cmd, name)
                fresh = tuple(item for item in items if item.origin.dedupe_key not in known)
                if fresh:  # the items were validated already: copied, not validated again
                    whole = len(fresh) == len(items)
                    kept_cmd = cmd if whole else cmd.model_copy(update={name: fresh})
                    kept.append((rank[fresh[0].origin.dedupe_key], kept_cmd))
            elif cmd.origin is None:  # not from a message: stays behind the one before it
                kept.append((kept[-1][0] if kept else -1, cmd))
            elif cmd.origin.dedupe_key not in known:
                kept.append((rank[cmd.origin.dedupe_key], cmd))
        kept.sort(key=lambda ranked: ranked[0])
        return [cmd for _, cmd in kept]
