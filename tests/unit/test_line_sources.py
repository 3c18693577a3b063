"""Which emails of which events a document line counts (``ledger.line_sources``)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from ledger.documents import Document, Line, assemble
from ledger.emails.usage import UsageEntry
from ledger.line_sources import NotAnEmailLine, Share, line_shares
from ledger.money import Money
from ledger.periods import Month

OCT = Month.of(2026, 10)


def entry(platform: int, smtp: int = 0, late: bool = False) -> UsageEntry:
    return UsageEntry(OCT, late, platform, smtp, 0, ())


def line(kind: str, quantity: int, description: str = "") -> Line:
    return Line(kind, description or kind, quantity, None, Money.of("0.00", "EUR"))  # type: ignore[arg-type]


def invoice(*lines: Line) -> Document:
    return assemble(
        number="2026-000001",
        kind="invoice",
        account_id="acme",
        period=OCT,
        issued_on=date(2026, 11, 1),
        due_on=date(2026, 11, 15),
        currency="EUR",
        lines=list(lines),
        tax_rate=Decimal(0),
        accrued=Money.of("0.00", "EUR"),
    )


# Events 3, 5 and 6 bill 700, 450 (+3 custom SMTP) and 100 October emails.
MONTH = [(3, [entry(700)]), (5, [entry(450, 3)]), (6, [entry(100)])]
DOC = invoice(
    line("fee", 1),
    line("included", 1000),
    line("usage", 200),
    line("usage", 50),
    line("custom_smtp", 3),
    line("volume_true_up", 1250),
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
    late = invoice(line("late_usage", 7, "Late usage from 2026-10: emails sent then"))
    assert line_shares(late, 1, [], [(9, [entry(4, late=True)]), (11, [entry(3, late=True)])]) == [
        Share(9, "platform", 0, 4),
        Share(11, "platform", 0, 3),
    ]


def test_a_fee_counts_no_email() -> None:
    with pytest.raises(NotAnEmailLine):
        line_shares(DOC, 1, MONTH, [])
