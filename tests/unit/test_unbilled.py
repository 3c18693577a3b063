"""The unbilled audit's rule (``ledger.unbilled``), over hand-built events: every
accepted email on exactly one document line, late ones on the next document."""

from __future__ import annotations

from ledger.emails.usage import UsageEntry
from ledger.money import Money
from ledger.periods import Month
from ledger.unbilled import EmailAccountBooks, Finding
from tests.unit.unit_builders import a_line, an_invoice

OCT, NOV = Month.of(2026, 10), Month.of(2026, 11)
ZERO = Money.zero("EUR")


def entry(month: Month, platform: int, smtp: int = 0, *, late: bool = False) -> UsageEntry:
    return UsageEntry(month, late, platform, smtp, 0, ())


def test_a_month_s_emails_on_its_lines_and_late_ones_on_the_next_an_invoice() -> None:
    books = EmailAccountBooks("acme")
    books.recorded(3, [entry(OCT, 1200, 7)], keys=1207)
    books.recorded(4, [entry(OCT, 300)], keys=300)
    # October: 1,000 included + 500 charged at tier 1 = 1,500; 7 via custom SMTP.
    books.issued(
        5,
        an_invoice(
            "2026-000001",
            OCT,
            a_line("fee", 1, "10.00"),
            a_line("included", 1000),
            a_line("usage", 500, "0.50"),
            a_line("custom_smtp", 7),
        ),
    )
    books.recorded(6, [entry(OCT, 40, 2, late=True), entry(NOV, 10)], keys=52)
    assert books.waiting == 50  # 40 late for the next document, 10 of November
    books.issued(
        8,
        an_invoice("2026-000002", NOV, a_line("included", 10), a_line("late_usage", 40, "0.04")),
    )
    assert books.findings == []
    assert (books.emails, books.on_lines, books.waiting, books.late_smtp) == (1559, 1557, 0, 2)


def test_a_line_short_of_the_month_and_late_usage_left_off_are_found() -> None:
    books = EmailAccountBooks("acme")
    books.recorded(3, [entry(OCT, 1500)], keys=1500)
    books.recorded(4, [entry(OCT, 5, late=True)], keys=5)  # late: October is documented next
    books.issued(5, an_invoice("2026-000001", OCT, a_line("included", 1000), a_line("usage", 499)))
    assert books.findings == [
        Finding(
            "acme",
            "lines",
            "2026-000001 (2026-10, event 5) shows 1,499 emails; 1,500 were recorded for it",
        ),
        Finding(
            "acme",
            "late",
            "2026-000001 (2026-10, event 5) shows 0 late emails; 5 were waiting for it",
        ),
    ]


def test_messages_pointing_at_an_event_must_be_the_emails_it_counts() -> None:
    books = EmailAccountBooks("acme")
    books.recorded(3, [entry(OCT, 2, 1)], keys=2)  # one dedupe row deleted
    books.unrecorded_keys(7, 4)  # four forged rows pointing at a fee event
    assert [f.detail for f in books.findings] == [
        "event 3 records 3 emails; 2 accepted messages point at it",
        "4 accepted emails point at event 7, which bills none",
    ]


def test_a_documented_month_takes_no_more_on_time_emails_and_a_skipped_one_none() -> None:
    books = EmailAccountBooks("acme")
    books.recorded(3, [entry(OCT, 4)], keys=4)
    books.skipped(4, OCT)
    books.recorded(5, [entry(OCT, 1)], keys=1)
    assert [f.detail for f in books.findings] == [
        "2026-10 was closed without a document (event 4) but 4 emails were recorded for it",
        "event 5 records 1 emails on time for 2026-10, already documented",
    ]
