"""Gapless document numbers, one sequence per calendar year across all accounts.

The sequence is an aggregate of its own, saved in the same transaction as the
accounts whose documents use its numbers. Two closers racing for the same
year both load version v; the second to commit collides on the sequence's
version and retries, so a number is either committed together with the
document that carries it or never handed out: no gaps, no duplicates.
"""

from __future__ import annotations

import uuid

from eventsourcing.domain import Aggregate, event

SEQUENCE_NAMESPACE = uuid.UUID("0b9e3c5a-7d2f-5e14-8c63-1a4f9d2e7b30")


def sequence_uuid(year: int) -> uuid.UUID:
    return uuid.uuid5(SEQUENCE_NAMESPACE, f"document-numbers:{year}")


def format_number(year: int, number: int) -> str:
    return f"{year:04d}-{number:06d}"


class DocumentNumberSequence(Aggregate):
    @staticmethod
    def create_id(year: int) -> uuid.UUID:
        return sequence_uuid(year)

    @event("Started")
    def __init__(self, year: int) -> None:
        self.year = year
        self.last = 0

    def allocate(self, count: int) -> list[str]:
        """Hand out the next ``count`` numbers as one recorded range."""
        if count <= 0:
            return []
        first = self.last + 1
        self._allocated(first=first, last=self.last + count)
        return [format_number(self.year, n) for n in range(first, self.last + 1)]

    @event("Allocated")
    def _allocated(self, first: int, last: int) -> None:
        self.last = last
