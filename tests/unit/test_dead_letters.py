"""A batch's refusals become dead-letter rows, in the order of their kinds."""

from __future__ import annotations

from commands.batch_rows import DeadLetterRow
from commands.handlers import Rejection
from commands.models import Origin
from consumers.dead_letter import dead_letter_rows
from consumers.messages import Record, Refused


def test_undecodable_records_come_first_then_the_refused_commands_messages() -> None:
    batch = [
        Record("billing.accounts", 2, offset, b"acme", b"v%d" % offset) for offset in (5, 6, 7)
    ]
    refused = [Refused(batch[2], "not JSON")]
    rejection = Rejection(
        (
            Origin("urn:p", "a", "billing.accounts", 2, 5),
            Origin("urn:p", "b", "billing.accounts", 2, 6),
        ),
        "unknown plan 'gold'",
    )
    assert dead_letter_rows(batch, refused, [rejection]) == [
        DeadLetterRow("billing.accounts", 2, 7, "not JSON", b"acme", b"v7"),
        DeadLetterRow("billing.accounts", 2, 5, "unknown plan 'gold'", b"acme", b"v5"),
        DeadLetterRow("billing.accounts", 2, 6, "unknown plan 'gold'", b"acme", b"v6"),
    ]


def test_a_batch_without_refusals_has_no_dead_letters() -> None:
    assert dead_letter_rows([Record("t", 0, 0, None, b"{}")], [], []) == []
