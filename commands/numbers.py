"""Gapless document numbers, drawn as documents are built and saved with them.

The year's :class:`DocumentNumberSequence` is an aggregate: saved in the same
transaction as the documents its numbers went to, so a number is committed
exactly when its document is, and two writers drawing the same number collide
(the loser is redone). The closer draws them for postpay invoices; a consumer
batch and ``ledger mark-paid`` for the final invoices of paid proformas.
"""

from __future__ import annotations

from collections import defaultdict

from ledger.application import Ledger
from ledger.numbering import DocumentNumberSequence, format_number, sequence_uuid


class NumberAllocator:
    """Hands out numbers as documents are built; records them as one range per year.

    ``fresh``: read each year's sequence from the store, not the ledger's cache. A
    consumer's cache is used without copies, so a batch that failed to commit may
    have left its copy advanced, and a closer in another process may have drawn
    numbers since: either would give a number twice or leave a gap.
    """

    def __init__(self, ledger: Ledger, *, fresh: bool = False) -> None:
        self.ledger = ledger
        self.fresh = fresh
        self.sequences: dict[int, DocumentNumberSequence] = {}
        self.taken: dict[int, int] = defaultdict(int)

    def __call__(self, year: int) -> str:
        sequence = self.sequences.get(year)
        if sequence is None:
            if self.fresh:
                self.ledger.evict([sequence_uuid(year)])
            sequence = self.ledger.get_sequence(year) or DocumentNumberSequence(year)
            self.sequences[year] = sequence
        self.taken[year] += 1
        return format_number(year, sequence.last + self.taken[year])

    def commit(self) -> list[DocumentNumberSequence]:
        for year, count in self.taken.items():
            self.sequences[year].allocate(count)
        return list(self.sequences.values())
