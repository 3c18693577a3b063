"""Payment, closing, invariants and replay of a contacts account (seed 002).

Amounts are worked out by hand from the plans described in ``contacts_builders``.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from contacts_builders import (
    AMS,
    AMS_OPENED,
    APR_15,
    FEB_15,
    GRACE,
    MAR_15,
    MICRO,
    OPENED,
    ORIGIN,
    PRO,
    Counter,
    D,
    assert_replays,
    change,
    close,
    emails,
    event_names,
    lines,
    open_account,
    period,
    totals,
)
from unit_builders import numbers, utc

from commands.models import SentEmailItem
from ledger.contacts.billable import ContactState
from ledger.contacts.proformas import InvalidPayment, ProformaNotFound
from ledger.documents import Document
from ledger.errors import AccountClosed

# ---------------------------------------------------------------- 10. payment


def test_paying_a_proforma_issues_the_numbered_invoice_on_the_local_paid_date() -> None:
    opened = utc(2027, 12, 1, 10)
    account = open_account(tz=AMS, tax_rate="0.21", products=("web-push",), opened_at=opened)
    [proforma] = close(account, opened + GRACE, Counter({opened: 600}))
    years: list[int] = []
    numbering = numbers()

    def next_number(year: int) -> str:
        years.append(year)
        return numbering(year)

    # 23:30Z on Dec 31 is 00:30 on Jan 1 2028 in Amsterdam
    invoice = account.pay("PF-acc-7-0001", utc(2027, 12, 31, 23, 30), next_number)
    invoice.check_invariants()
    assert years == [2028]
    assert invoice.number == "2028-000001"
    assert invoice.kind == "invoice"
    assert invoice.issued_on == date(2028, 1, 1)
    assert invoice.due_on is None
    assert invoice.proforma == "PF-acc-7-0001"
    assert invoice.period == period("2027-12-01", "2028-01-01")
    assert invoice.contacts == 600
    # 29.00 + web-push 5.00 = 34.00; 21% = 7.14
    assert (
        lines(invoice)
        == lines(proforma)
        == [
            ("subscription", 1, D("29.00"), D("29.00")),
            ("product", 1, D("5.00"), D("5.00")),
        ]
    )
    assert totals(invoice) == (D("34.00"), D("7.14"), D("41.14"))
    assert account.invoices == ["2028-000001"]
    assert account.open_proformas == {}
    with pytest.raises(ProformaNotFound):
        account.pay("PF-acc-7-0001", utc(2028, 1, 2), next_number)
    with pytest.raises(ProformaNotFound):
        account.pay("PF-acc-7-0099", utc(2028, 1, 2), next_number)
    assert years == [2028]  # no number spent on a refused payment
    account.check_invariants()
    assert_replays(account)


def test_a_payment_dated_before_the_proformas_local_issue_date_is_refused() -> None:
    account = open_account(tz=AMS, opened_at=AMS_OPENED)
    [proforma] = close(account, AMS_OPENED + GRACE, Counter({AMS_OPENED: 600}))
    assert proforma.issued_on == date(2027, 3, 10)
    account.collect_events()
    years: list[int] = []
    numbering = numbers()

    def next_number(year: int) -> str:
        years.append(year)
        return numbering(year)

    # 22:59Z on Mar 9 is 23:59 on Mar 9 in Amsterdam (CET): the day before the issue
    with pytest.raises(InvalidPayment):
        account.pay("PF-acc-7-0001", utc(2027, 3, 9, 22, 59), next_number)
    assert years == []  # no number spent
    assert list(account.open_proformas) == ["PF-acc-7-0001"]
    assert account.collect_events() == []
    # 23:00Z on Mar 9 is 00:00 on Mar 10 local: the issue date itself is fine,
    # even before the issuing instant (15:30Z)
    invoice = account.pay("PF-acc-7-0001", utc(2027, 3, 9, 23), next_number)
    assert (invoice.number, invoice.issued_on) == ("2027-000001", date(2027, 3, 10))
    assert years == [2027]


# ---------------------------------------------------------------- 12. closing


def test_closing_stops_renewals_but_bills_the_closing_months_overage() -> None:
    account = open_account()
    counter = Counter({OPENED: 100, FEB_15: 100})
    close(account, FEB_15 + GRACE, counter)
    # month 1 (Feb 15 - Mar 15) holds the closing; 700 before and 100 after it
    account.record_emails(emails(700, utc(2027, 2, 20)))
    account.close(utc(2027, 2, 25))
    account.record_emails(emails(100, utc(2027, 3, 1)))
    [last] = close(account, MAR_15 + GRACE, counter)
    # no renewal: 800 sent of 400 allowed -> 400 x 0.0010 = 0.40
    assert last.number == "PF-acc-7-0003"
    assert last.period == period("2027-02-15", "2027-03-15")
    assert last.contacts is None
    assert lines(last) == [
        ("included", 400, D("0"), D("0.00")),
        ("overage", 400, D("0.0010"), D("0.40")),
    ]
    assert MAR_15 not in counter.asked
    assert close(account, utc(2027, 6, 16), counter) == []
    # late emails for the closing month still get billed, once
    account.record_emails(emails(50, utc(2027, 2, 21)))
    [late] = close(account, utc(2027, 6, 17), counter)
    assert late.number == "PF-acc-7-0004"
    assert late.period == period("2027-03-15", "2027-04-15")
    assert lines(late) == [("late_overage", 50, D("0.0010"), D("0.05"))]
    assert close(account, utc(2027, 9, 17), counter) == []
    assert_replays(account)


def test_a_closed_accounts_later_month_with_emails_is_billed_with_no_allowance() -> None:
    account = open_account()
    counter = Counter({OPENED: 100})
    close(account, OPENED + GRACE, counter)
    account.close(utc(2027, 1, 20))
    # 1,000 platform emails dated in month 2 (Mar 15 - Apr 15), long after the closing
    account.record_emails(emails(1000, utc(2027, 3, 20)))
    # months 0 and 1 end with nothing to bill; month 2 is not over yet
    assert close(account, APR_15 + GRACE - MICRO, counter) == []
    [look_ahead] = close(account, APR_15 + GRACE, counter)
    assert (look_ahead.number, look_ahead.period, look_ahead.contacts) == (
        "PF-acc-7-0002",
        period("2027-03-15", "2027-04-15"),
        None,
    )
    # no period priced month 2: allowance 0, 1,000 x basic's 0.0010 = 1.00
    assert lines(look_ahead) == [
        ("included", 0, D("0"), D("0.00")),
        ("overage", 1000, D("0.0010"), D("1.00")),
    ]
    assert "no subscription covered this month" in look_ahead.lines[0].description
    assert totals(look_ahead) == (D("1.00"), D("0.00"), D("1.00"))
    assert account.months["2"].allowance is None
    assert account.months["2"].billed == 1000
    # never a renewal after the closing, and nothing more to bill
    assert counter.asked == [OPENED]
    assert close(account, utc(2027, 12, 1), counter) == []
    assert_replays(account)


def test_a_closed_accounts_allowance_lasts_as_long_as_the_period_it_paid_for() -> None:
    # One rule for both models: the allowance ends with the last period paid for; later
    # platform emails pay from the first one, on the document of their own month.
    account = open_account(period="quarter")
    counter = Counter({OPENED: 100})
    [quarter] = close(account, OPENED + GRACE, counter)
    # 100 contacts: tier 1, 19.00 x 3 months = 57.00, less 5% = 2.85 -> 54.15
    assert totals(quarter) == (D("54.15"), D("0.00"), D("54.15"))
    account.close(utc(2027, 1, 20))
    # month 1 (Feb 15 - Mar 15) is inside the paid quarter: 4 x 100 = 400 included
    account.record_emails(emails(500, utc(2027, 2, 20)))
    # month 3 (Apr 15 - May 15) is after it: nothing included
    account.record_emails(emails(300, utc(2027, 4, 20)))
    docs = close(account, utc(2027, 6, 1), counter)
    assert [(d.number, d.period) for d in docs] == [
        ("PF-acc-7-0002", period("2027-02-15", "2027-03-15")),
        ("PF-acc-7-0003", period("2027-04-15", "2027-05-15")),
    ]
    # 500 - 400 = 100 x 0.0010 = 0.10
    assert lines(docs[0]) == [
        ("included", 400, D("0"), D("0.00")),
        ("overage", 100, D("0.0010"), D("0.10")),
    ]
    # 300 x 0.0010 = 0.30, from the first email
    assert lines(docs[1]) == [
        ("included", 0, D("0"), D("0.00")),
        ("overage", 300, D("0.0010"), D("0.30")),
    ]
    assert counter.asked == [OPENED]  # no renewal after the closing
    assert_replays(account)


def test_a_batch_across_an_allowance_month_boundary_is_one_event_per_month() -> None:
    account = open_account(tz=AMS)  # anchor Jan 15: month 1 starts Feb 15 00:00 CET
    account.collect_events()
    last_of_month_0 = SentEmailItem(
        utc(2027, 2, 14, 22, 59) + timedelta(seconds=59), "platform", ORIGIN
    )
    first_of_month_1 = SentEmailItem(
        utc(2027, 2, 14, 23) + timedelta(seconds=1), "platform", ORIGIN
    )
    recorded = account.record_emails([first_of_month_1, last_of_month_0, first_of_month_1])
    events = account.collect_events()
    assert [type(e).__name__ for e in events] == ["EmailsRecorded", "EmailsRecorded"]
    month_0, month_1 = events
    assert [m.index for m in month_0.months] == [0]
    assert month_0.effective_at == last_of_month_0.sent_at
    assert [m.index for m in month_1.months] == [1]
    assert month_1.effective_at == first_of_month_1.sent_at
    assert recorded == [
        (month_0.originator_version, [last_of_month_0]),
        (month_1.originator_version, [first_of_month_1, first_of_month_1]),
    ]
    assert (account.months["0"].platform, account.months["1"].platform) == (1, 2)


def test_closing_just_before_a_renewal_instant_means_no_renewal() -> None:
    account = open_account()
    counter = Counter({OPENED: 100})
    close(account, OPENED + GRACE, counter)
    account.close(FEB_15 - MICRO)
    assert close(account, utc(2027, 4, 1), counter) == []
    assert FEB_15 not in counter.asked
    assert account.documented_months == 1


def test_a_closed_account_refuses_plan_changes_and_a_second_closing() -> None:
    account = open_account()
    account.close(utc(2027, 1, 20))
    with pytest.raises(AccountClosed):
        account.change_plan(PRO, None, None, utc(2027, 1, 21))
    with pytest.raises(AccountClosed):
        account.close(utc(2027, 1, 21))


# ---------------------------------------------------------------- 13. invariants and replay


def test_a_year_of_everything_keeps_the_invariants_and_replays_to_the_same_state() -> None:
    account = open_account(tz=AMS, period="quarter", products=("automation",), tax_rate="0.21")
    counter = Counter(default=600)
    numbering = numbers()
    issued: list[Document] = []
    t = utc(2027, 1, 15, 10)
    # step s runs at t = Jan 15 10:00Z + 7 (s + 1) days; renewals at local midnight of
    # the 15th (22:00Z or 23:00Z the day before), billed from 04:00Z or 05:00Z on the 15th
    for step in range(60):  # a week at a time, a bit over a year (last: 2028-03-10)
        t += timedelta(days=7)
        account.record_contact_changes(
            [change(ContactState(f"c{step}", 1, email="x@y"), t - timedelta(hours=1))], {}
        )
        account.check_invariants()
        account.record_emails(emails(900, t - timedelta(days=10)) + emails(5, t, "custom_smtp"))
        account.check_invariants()
        if step == 20:  # Jun 11, after the Apr 15 renewal: from the Jul 15 renewal on
            account.change_plan(PRO, ("automation", "chat"), "month", t)
        if step == 30:  # Aug 20: a new count never reopens a priced renewal
            counter.default = 1500
        if step == 31:  # Aug 27, dated Aug 10: replaces the unpaid Aug 15 renewal
            account.change_plan(PRO, ("automation",), None, utc(2027, 8, 10))
        issued += close(account, t, counter)
        # overage-only proformas are paid as they come; renewals stay unpaid (replaceable)
        for number, held in list(account.open_proformas.items()):
            if held.counted_at is None:
                account.pay(number, t, numbering).check_invariants()
        account.check_invariants()
    for number in list(account.open_proformas):
        account.pay(number, t, numbering).check_invariants()
    account.check_invariants()
    assert account.billable == 60
    kinds = {line.kind for d in issued for line in d.lines}
    assert {"overage", "late_overage", "custom_smtp", "period_discount"} <= kinds
    # every renewal instant counted once
    assert len(counter.asked) == len(set(counter.asked))

    def price(doc: Document) -> Decimal:
        kinds = {"subscription", "product", "period_discount", "minimum_price"}
        return sum((line.amount.amount for line in doc.lines if line.kind in kinds), D(0))

    renewals = [(d.period, d.contacts, price(d)) for d in issued if d.contacts is not None]
    # basic 600 quarterly + automation: 3 x (29.00 + 15.00) = 132.00 less 6.60 = 125.40;
    # Pro 600 monthly + automation + chat: 49.00 + 15.00 + 10.00 = 74.00;
    # Pro 1,500 + automation + chat: 99.00 + 25.00 = 124.00, replaced by
    # Pro 1,500 + automation: 99.00 + 15.00 = 114.00, the new floor, every month after
    assert renewals == [
        (period("2027-01-15", "2027-04-15"), 600, D("125.40")),
        (period("2027-04-15", "2027-07-15"), 600, D("125.40")),
        (period("2027-07-15", "2027-08-15"), 600, D("74.00")),
        (period("2027-08-15", "2027-09-15"), 1500, D("124.00")),
        (period("2027-08-15", "2027-09-15"), 1500, D("114.00")),
        (period("2027-09-15", "2027-10-15"), 1500, D("114.00")),
        (period("2027-10-15", "2027-11-15"), 1500, D("114.00")),
        (period("2027-11-15", "2027-12-15"), 1500, D("114.00")),
        (period("2027-12-15", "2028-01-15"), 1500, D("114.00")),
        (period("2028-01-15", "2028-02-15"), 1500, D("114.00")),
        (period("2028-02-15", "2028-03-15"), 1500, D("114.00")),
    ]
    # the Aug 15 renewal, replaced by the next one issued for the same period
    aug = [
        d.number
        for d in issued
        if d.contacts is not None and d.period == period("2027-08-15", "2027-09-15")
    ]
    assert account.replaced == {aug[0]: aug[1]}
    assert account.open_proformas == {}
    assert (account.subscription.number, account.subscription.floor) == (3, D("114.00"))
    assert len({d.number for d in issued}) == len(issued)
    # every proforma paid once, except the one replaced
    assert len(account.invoices) == len(issued) - 1
    events = assert_replays(account)
    assert type(events[0]).__name__ == "Opened"
    assert event_names(events).count("ProformaReplaced") == 1
