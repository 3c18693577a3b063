"""Gapless document numbers, one sequence per calendar year across all accounts.

The sequence is an aggregate of its own, saved in the same transaction as the
accounts whose documents use its numbers. Two closers racing for the same
year both load version v; the second to commit collides on the sequence's
version and retries, so a number is either committed together with the
document that carries it or never handed out: no gaps, no duplicates.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class NumberingFindings:
    """What an auditor finds in one year's numbers: each a list, empty when sound."""

    year: int
    allocated: int
    #: Numbers allocated (1..allocated) that no document carries.
    gaps: list[str]
    #: Numbers carried by more than one document, with the documents' owners.
    duplicates: dict[str, list[str]]
    #: Numbers on documents that the year's sequence never allocated.
    unallocated: list[str]

    @property
    def sound(self) -> bool:
        return not (self.gaps or self.duplicates or self.unallocated)


def audit_numbers(
    year: int, allocated: int, issued: Iterable[tuple[str, str]]
) -> NumberingFindings:
    """``issued``: (number, who issued it) for every numbered document in history.

    Sound means each of the year's ``allocated`` numbers is on exactly one
    document and no document of the year carries a number beyond them.
    """
    owners: dict[int, list[str]] = {}
    prefix = f"{year:04d}-"
    for number, owner in issued:
        if number.startswith(prefix) and number[len(prefix) :].isdigit():
            owners.setdefault(int(number[len(prefix) :]), []).append(owner)
    return NumberingFindings(
        year=year,
        allocated=allocated,
        gaps=[format_number(year, n) for n in range(1, allocated + 1) if n not in owners],
        duplicates={
            format_number(year, n): found for n, found in sorted(owners.items()) if len(found) > 1
        },
        unallocated=[format_number(year, n) for n in sorted(owners) if n > allocated],
    )
