"""Which emails of which events a document line counts (``ledger.line_sources``)."""

from __future__ import annotations

import pytest

from ledger.emails.usage import UsageEntry
from ledger.line_sources import NotAnEmailLine, Share, line_shares
from ledger.periods import Month
from tests.unit.unit_builders import a_line, an_invoice

OCT = Month.of(2026, 10)


def entry(platform: int, smtp: int = 0, late: bool = False) -> UsageEntry:
    return UsageEntry(OCT, late, platform, smtp, 0, ())


# Events 3, 5 and 6 bill 700, 450 (+3 custom SMTP) and 100 October emails.
MONTH = [(3, [entry(700)]), (5, [entry(450, 3)]), (6, [entry(100)])]
DOC = an_invoice(
    "2026-000001",
    OCT,
    a_line("fee", 1),
    a_line("included", 1000),
    a_line("usage", 200),
    a_line("usage", 50),
    a_line("custom_smtp", 3),
    a_line("volume_true_up", 1250),
)


def test_the_lines_take_the_month_s_emails_in_order_across_events() -> None:
    assert line_shares(DOC, 2, MONTH, []) == [
        Share(3, "platform", 0, 700),
        Share(5, "platform", 0, 300),
    ]
    assert line_shares(DOC, 3, MONTH, []) == [
        Share(5, "platform", 300, 450),
        Share(6, "platform", 0, 50),
    ]
    assert line_shares(DOC, 4, MONTH, []) == [Share(6, "platform", 50, 100)]


def test_custom_smtp_true_up_and_late_usage() -> None:
    assert line_shares(DOC, 5, MONTH, []) == [Share(5, "custom_smtp", 0, 3)]
    assert sum(s.count for s in line_shares(DOC, 6, MONTH, [])) == 1250
    late = an_invoice(
        "2026-000001",
        OCT,
        a_line("late_usage", 7, description="Late usage from 2026-10: emails sent then"),
    )
    assert line_shares(late, 1, [], [(9, [entry(4, late=True)]), (11, [entry(3, late=True)])]) == [
        Share(9, "platform", 0, 4),
        Share(11, "platform", 0, 3),
    ]


def test_a_fee_counts_no_email() -> None:
    with pytest.raises(NotAnEmailLine):
        line_shares(DOC, 1, MONTH, [])
