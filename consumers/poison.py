"""Poison isolation: a command whose handler fails unexpectedly is taken out of its
batch and dead-lettered, instead of stopping the partition.

Its failure may have left aggregates half-changed, so the batch's work is
thrown away, what it loaded is evicted (nothing of it was saved: the pipeline
has no save in flight while a batch is applied), and the batch is applied
again without that command, whose messages are refused with the error. A
refusal the domain makes (a ``LedgerError``) is not poison: the handlers turn
it into a rejection themselves (``commands/handlers.py``).
"""

from __future__ import annotations

import structlog

from commands.handlers import BatchWork, PoisonCommand, Rejection, apply_commands, origins_of
from commands.models import AccountCommand
from ledger.application import Ledger
from ledger.opening import account_uuid
from ledger.plans import Catalogue

log = structlog.get_logger(__name__)


def apply_isolating_poison(
    ledger: Ledger, catalogue: Catalogue, commands: list[AccountCommand], **where: object
) -> BatchWork:
    """The batch applied, poison commands refused; ``where`` (topic, partition)
    goes into the log line of each."""
    refused: list[Rejection] = []
    while True:
        work = BatchWork(ledger, catalogue)
        try:
            apply_commands(commands, work)
        except PoisonCommand as poison:
            ledger.evict([account_uuid(a) for a in work.accounts])
            log.error(
                "command_failed_dead_lettering",
                **where,
                command=type(poison.command).__name__,
                error=str(poison),
            )
            commands = [c for c in commands if c is not poison.command]
            refused.append(Rejection(origins_of(poison.command), str(poison)))
            continue
        work.rejections[:0] = refused
        return work
