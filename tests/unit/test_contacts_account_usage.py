"""Allowance, overage and late emails of a contacts account (seed 002).

Amounts are worked out by hand from the plans described in ``contacts_builders``.
"""

from __future__ import annotations

from datetime import timedelta

from contacts_builders import (
    APR_15,
    FEB_15,
    GRACE,
    MAR_15,
    MAY_15,
    OPENED,
    PRO,
    Counter,
    D,
    assert_replays,
    close,
    emails,
    late_months,
    lines,
    open_account,
    period,
    totals,
)
from unit_builders import utc

# ---------------------------------------------------------------- 5. allowance and overage


def test_emails_before_the_opening_count_in_month_0_and_custom_smtp_never_counts() -> None:
    account = open_account()
    account.record_emails(
        emails(300, utc(2027, 1, 10))  # before the opening (Jan 15 10:00)
        + emails(150, utc(2027, 1, 20))
        + emails(99, utc(2027, 1, 20), "custom_smtp")
    )
    docs = close(account, FEB_15 + GRACE, Counter({OPENED: 100, FEB_15: 100}))
    # 100 contacts: allowance 400 of 450 platform emails; 50 x 0.0010 = 0.05
    assert lines(docs[1]) == [
        ("subscription", 1, D("19.00"), D("19.00")),
        ("included", 400, D("0"), D("0.00")),
        ("overage", 50, D("0.0010"), D("0.05")),
        ("custom_smtp", 99, D("0"), D("0.00")),
    ]
    assert totals(docs[1]) == (D("19.05"), D("0.00"), D("19.05"))


def test_only_custom_smtp_emails_are_never_overage_even_far_beyond_the_allowance() -> None:
    account = open_account()
    account.record_emails(emails(100000, utc(2027, 1, 20), "custom_smtp"))
    docs = close(account, FEB_15 + GRACE, Counter(default=10))
    assert lines(docs[1]) == [
        ("subscription", 1, D("19.00"), D("19.00")),
        ("custom_smtp", 100000, D("0"), D("0.00")),
    ]


def test_quarterly_allowance_is_monthly_and_overage_is_billed_at_each_month_end() -> None:
    account = open_account(period="quarter")
    counter = Counter({OPENED: 100, APR_15: 250})
    account.record_emails(
        emails(1000, utc(2027, 1, 20))  # month 0: 4 x 100 = 400 allowed, 600 over
        + emails(400, utc(2027, 2, 20))  # month 1: exactly the allowance
        + emails(500, utc(2027, 3, 20))  # month 2: 100 over, rides on the renewal
        + emails(1100, utc(2027, 4, 20))  # month 3: 4 x 250 = 1,000 allowed, 100 over
    )
    docs = close(account, MAY_15 + GRACE, counter)
    assert [(d.number, d.period, d.contacts) for d in docs] == [
        ("PF-acc-7-0001", period("2027-01-15", "2027-04-15"), 100),
        ("PF-acc-7-0002", period("2027-01-15", "2027-02-15"), None),
        ("PF-acc-7-0003", period("2027-04-15", "2027-07-15"), 250),
        ("PF-acc-7-0004", period("2027-04-15", "2027-05-15"), None),
    ]
    assert [lines(d) for d in docs] == [
        # 3 x 19.00 = 57.00 less 5% = 2.85
        [("subscription", 3, D("19.00"), D("57.00")), ("period_discount", 1, None, D("-2.85"))],
        # 600 x 0.0010 = 0.60
        [("included", 400, D("0"), D("0.00")), ("overage", 600, D("0.0010"), D("0.60"))],
        # 250 contacts still tier 1; month 2's 100 x 0.0010 = 0.10 on the renewal
        [
            ("subscription", 3, D("19.00"), D("57.00")),
            ("period_discount", 1, None, D("-2.85")),
            ("included", 400, D("0"), D("0.00")),
            ("overage", 100, D("0.0010"), D("0.10")),
        ],
        # month 3 priced from the Apr 15 count: 1,000 allowed, 100 over = 0.10
        [("included", 1000, D("0"), D("0.00")), ("overage", 100, D("0.0010"), D("0.10"))],
    ]
    assert [d.subtotal.amount for d in docs] == [D("54.15"), D("0.60"), D("54.25"), D("0.10")]
    # only renewals are counted: never Feb 15, Mar 15 or May 15
    assert set(counter.asked) == {OPENED, APR_15}
    assert_replays(account)


def test_yearly_allowance_is_four_per_contact_every_month_at_the_plans_unit_price() -> None:
    account = open_account(plan=PRO, period="year")
    # 2,000 contacts: allowance 8,000 a month; month 5 (Jun 15 - Jul 15) sends 9,000
    account.record_emails(emails(9000, utc(2027, 6, 20)))
    docs = close(account, utc(2027, 7, 15) + GRACE, Counter({OPENED: 2000}))
    assert [d.number for d in docs] == ["PF-acc-7-0001", "PF-acc-7-0002"]
    overage = docs[1]
    assert overage.period == period("2027-06-15", "2027-07-15")
    # 1,000 x 0.0008 = 0.80
    assert lines(overage) == [
        ("included", 8000, D("0"), D("0.00")),
        ("overage", 1000, D("0.0008"), D("0.80")),
    ]
    assert overage.contacts is None


# ---------------------------------------------------------------- 6. late emails


def test_late_emails_are_billed_once_on_the_next_document_for_what_exceeds_the_allowance() -> None:
    account = open_account()
    counter = Counter(default=100)  # allowance 400 every month
    account.record_emails(emails(450, utc(2027, 1, 20)))
    docs = close(account, FEB_15 + GRACE, counter)
    assert lines(docs[1])[-1] == ("overage", 50, D("0.0010"), D("0.05"))
    # month 0 is documented: 30 more for it are late; month 1 sends 100 (within 400)
    account.record_emails(emails(30, utc(2027, 2, 1)) + emails(100, utc(2027, 2, 20)))
    assert late_months(account) == (0,)
    assert close(account, FEB_15 + GRACE + timedelta(days=1), counter) == []  # no boundary yet
    [march] = close(account, MAR_15 + GRACE, counter)
    # 480 sent of 400 allowed: 80 over, 50 already billed -> 30 x 0.0010 = 0.03
    assert lines(march) == [
        ("subscription", 1, D("19.00"), D("19.00")),
        ("late_overage", 30, D("0.0010"), D("0.03")),
        ("included", 100, D("0"), D("0.00")),
    ]
    assert late_months(account) == ()
    # nothing new late: the next document carries no late line (never twice)
    [april] = close(account, APR_15 + GRACE, counter)
    assert lines(april) == [("subscription", 1, D("19.00"), D("19.00"))]
    # month 1 late but still within its allowance (100 + 250 <= 400): no line;
    # month 0 late again: 20 more, all beyond -> 0.02
    account.record_emails(emails(250, utc(2027, 3, 1)) + emails(20, utc(2027, 2, 2)))
    assert late_months(account) == (0, 1)
    [may] = close(account, MAY_15 + GRACE, counter)
    assert lines(may) == [
        ("subscription", 1, D("19.00"), D("19.00")),
        ("late_overage", 20, D("0.0010"), D("0.02")),
    ]
    assert account.months["0"].billed == 100  # 50 + 30 + 20, each once
    assert_replays(account)


def test_late_emails_of_a_quarterly_month_get_an_overage_only_proforma_at_the_next_month_end() -> (
    None
):
    account = open_account(period="quarter")
    counter = Counter({OPENED: 100})
    close(account, FEB_15 + GRACE, counter)
    # 500 late for month 0 (400 allowed): 100 x 0.0010 = 0.10 at the end of month 1
    account.record_emails(emails(500, utc(2027, 2, 1)))
    [late] = close(account, MAR_15 + GRACE, counter)
    assert late.period == period("2027-02-15", "2027-03-15")
    assert lines(late) == [("late_overage", 100, D("0.0010"), D("0.10"))]


def test_overage_under_a_cent_is_carried_until_it_adds_up_never_dropped() -> None:
    account = open_account(period="quarter")
    counter = Counter({OPENED: 100})
    # month 0 (Jan 15 - Feb 15): 4 x 100 = 400 allowed; 403 sent: 3 x 0.0010 = 0.003 -> 0.00
    account.record_emails(emails(403, utc(2027, 1, 20)))
    assert [d.number for d in close(account, FEB_15 + GRACE, counter)] == ["PF-acc-7-0001"]
    assert account.late_months == (0,)  # carried, not marked billed
    # month 1 (Feb 15 - Mar 15): 402 sent, 2 over. With month 0's 3: 0.002 + 0.003 = 0.005,
    # each line rounds on its own (0.00 + 0.00): still nothing to invoice, both carried.
    account.record_emails(emails(402, utc(2027, 2, 20)))
    assert close(account, MAR_15 + GRACE, counter) == []
    assert account.late_months == (0, 1)
    # 3 more of month 0 reported late: 6 x 0.0010 = 0.006 -> 0.01 is invoiced at Apr 15
    # (the renewal, counted 100 again), month 1's 0.002 rides along as a 0.00 line.
    account.record_emails(emails(3, utc(2027, 1, 21)))
    counter.counts[APR_15] = 100
    [renewal] = close(account, APR_15 + GRACE, counter)
    assert [line for line in lines(renewal) if line[0] == "late_overage"] == [
        ("late_overage", 6, D("0.0010"), D("0.01")),
        ("late_overage", 2, D("0.0010"), D("0.00")),
    ]
    assert account.late_months == ()
    assert account.months["0"].billed == 6 and account.months["1"].billed == 2
