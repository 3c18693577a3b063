"""Plan changes and the replacement of an unpaid renewal (seed 002).

Amounts are worked out by hand from the plans described in ``contacts_builders``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from contacts_builders import (
    APR_15,
    BASIC,
    FEB_15,
    GRACE,
    MAR_15,
    MAY_15,
    MICRO,
    OPENED,
    PRO,
    PRO6,
    Counter,
    D,
    assert_replays,
    close,
    emails,
    event_names,
    lines,
    open_account,
    period,
    totals,
)
from unit_builders import numbers, utc

from ledger.contacts.proformas import ProformaNotFound

# ---------------------------------------------------------------- 9. plan change


def test_a_plan_change_starts_a_new_subscription_at_the_next_renewal() -> None:
    account = open_account(tax_rate="0.21")
    counter = Counter({OPENED: 1200, FEB_15: 1200, MAY_15: 800})
    [first] = close(account, OPENED + GRACE, counter)
    account.change_plan(PRO, ("sms",), "quarter", utc(2027, 1, 20))
    assert account.pending is not None
    assert account.subscription.number == 1
    # month 1 under Pro: 4 x 1,200 = 4,800 allowed; 5,800 sent -> 1,000 x 0.0008 = 0.80
    account.record_emails(emails(5800, utc(2027, 2, 20)))
    docs = close(account, MAY_15 + GRACE, counter)
    # the period already priced stands: no replacement of PF-0001
    assert [d.number for d in docs] == ["PF-acc-7-0002", "PF-acc-7-0003", "PF-acc-7-0004"]
    assert account.open_proformas["PF-acc-7-0001"].document == first
    new, overage, second = docs
    assert new.period == period("2027-02-15", "2027-05-15")
    # Pro 1,200: tier 2 99.00; 3 x 99.00 = 297.00; sms 3 x 20.00 = 60.00;
    # 357.00 less 5% = 17.85 -> 339.15; tax 21% = 71.2215 -> 71.22
    assert lines(new) == [
        ("subscription", 3, D("99.00"), D("297.00")),
        ("product", 3, D("20.00"), D("60.00")),
        ("period_discount", 1, None, D("-17.85")),
    ]
    assert totals(new) == (D("339.15"), D("71.22"), D("410.37"))
    assert overage.period == period("2027-02-15", "2027-03-15")
    assert lines(overage) == [
        ("included", 4800, D("0"), D("0.00")),
        ("overage", 1000, D("0.0008"), D("0.80")),
    ]
    # the new floor is 339.15 (not basic's 49.00): Pro 800 = tier 1 49.00;
    # 147.00 + 60.00 = 207.00 less 10.35 = 196.65 -> lifted by 142.50
    assert second.period == period("2027-05-15", "2027-08-15")
    assert lines(second) == [
        ("subscription", 3, D("49.00"), D("147.00")),
        ("product", 3, D("20.00"), D("60.00")),
        ("period_discount", 1, None, D("-10.35")),
        ("minimum_price", 1, None, D("142.50")),
    ]
    assert account.subscription.number == 2
    assert account.subscription.floor == D("339.15")
    assert account.pending is None
    # quarterly now: Mar 15 and Apr 15 were not renewals
    assert set(counter.asked) == {OPENED, FEB_15, MAY_15}
    assert_replays(account)


def test_a_plan_change_during_the_opening_grace_waits_for_the_first_renewal() -> None:
    account = open_account()
    account.change_plan(PRO, None, None, OPENED + timedelta(hours=1))
    docs = close(account, FEB_15 + GRACE, Counter(default=600))
    # period 0 on basic (600: 29.00), period 1 on pro (600: tier 1 49.00), products kept ()
    assert [lines(d) for d in docs] == [
        [("subscription", 1, D("29.00"), D("29.00"))],
        [("subscription", 1, D("49.00"), D("49.00"))],
    ]
    assert account.subscription.plan == PRO
    assert account.subscription.number == 2


def test_asking_for_the_current_terms_cancels_a_scheduled_change() -> None:
    account = open_account()
    close(account, OPENED + GRACE, Counter(default=600))
    account.change_plan(BASIC, ("chat",), None, utc(2027, 1, 20))
    assert account.pending is not None
    account.change_plan(BASIC, (), "month", utc(2027, 1, 21))
    assert account.pending is None
    events = [type(e).__name__ for e in account.collect_events()]
    assert events.count("PlanChangeScheduled") == 2
    [renewal] = close(account, FEB_15 + GRACE, Counter(default=600))
    assert lines(renewal) == [("subscription", 1, D("29.00"), D("29.00"))]
    assert account.subscription.number == 1


def test_the_same_terms_or_the_already_scheduled_terms_record_no_event() -> None:
    account = open_account(products=("chat",))
    account.collect_events()
    version = account.version
    assert account.change_plan(BASIC, ("chat",), "month", utc(2027, 1, 20)) == version
    assert account.change_plan(BASIC, None, None, utc(2027, 1, 20)) == version
    assert account.collect_events() == []
    account.change_plan(BASIC, None, "year", utc(2027, 1, 21))
    version = account.version
    assert account.change_plan(BASIC, ("chat",), "year", utc(2027, 1, 22)) == version
    assert len(account.collect_events()) == 1


def test_the_same_products_in_another_order_are_no_plan_change() -> None:
    account = open_account(products=("chat", "automation"))
    account.collect_events()
    version = account.version
    # products are a set: reordered, they are the terms in force
    assert account.change_plan(BASIC, ("automation", "chat"), "month", utc(2027, 1, 20)) == version
    assert account.pending is None
    assert account.collect_events() == []
    # a change is scheduled; asking for it again in another order records nothing
    account.change_plan(PRO, ("sms", "chat"), None, utc(2027, 1, 21))
    version = account.version
    assert account.change_plan(PRO, ("chat", "sms"), "month", utc(2027, 1, 22)) == version
    assert len(account.collect_events()) == 1
    # and the terms in force reordered cancel it
    account.change_plan(BASIC, ("automation", "chat"), None, utc(2027, 1, 23))
    assert account.pending is None
    assert account.pending_at is None
    assert [type(e).__name__ for e in account.collect_events()] == ["PlanChangeScheduled"]


def test_late_emails_of_a_month_before_a_plan_change_keep_that_months_price() -> None:
    account = open_account()
    counter = Counter(default=100)  # allowance 400 a month on either plan
    close(account, OPENED + GRACE, counter)
    account.change_plan(PRO, None, None, utc(2027, 1, 20))
    close(account, FEB_15 + GRACE, counter)  # month 1 on Pro from here
    # 600 late for month 0 (basic, 0.0010): 200 x 0.0010 = 0.20, not Pro's 0.0008
    account.record_emails(emails(600, utc(2027, 2, 1)))
    [march] = close(account, MAR_15 + GRACE, counter)
    # Pro 100 contacts: tier 1 49.00
    assert lines(march) == [
        ("subscription", 1, D("49.00"), D("49.00")),
        ("late_overage", 200, D("0.0010"), D("0.20")),
    ]


# ---------------------------------------------------------------- 11. replacement

JUN_15 = utc(2027, 6, 15)
JUL_15 = utc(2027, 7, 15)


def test_a_priced_renewal_is_never_counted_again_and_a_new_count_replaces_nothing() -> None:
    account = open_account()
    counter = Counter({OPENED: 600, FEB_15: 400})
    [first] = close(account, OPENED + GRACE, counter)
    # late contact changes: 1,200 were billable at the opening after all
    counter.counts[OPENED] = 1200
    assert close(account, utc(2027, 1, 20, 9), counter) == []
    [renewal] = close(account, FEB_15 + GRACE, counter)
    # each renewal instant asked once, when it was new
    assert counter.asked == [OPENED, FEB_15]
    assert account.open_proformas["PF-acc-7-0001"].document == first
    # 600: tier 2 29.00, still the floor and month 0's allowance (4 x 600)
    assert lines(first) == [("subscription", 1, D("29.00"), D("29.00"))]
    assert account.subscription.floor == D("29.00")
    assert account.months["0"].allowance == 2400
    # 400: 19.00, lifted by 29.00 - 19.00 = 10.00
    assert renewal.number == "PF-acc-7-0002"
    assert lines(renewal) == [
        ("subscription", 1, D("19.00"), D("19.00")),
        ("minimum_price", 1, None, D("10.00")),
    ]
    assert account.replaced == {}
    assert "ProformaReplaced" not in event_names(assert_replays(account))


@pytest.mark.parametrize(
    "at",
    [
        pytest.param(utc(2027, 2, 14), id="dated-the-day-before"),
        pytest.param(FEB_15, id="dated-at-the-counting-instant"),
    ],
)
def test_a_late_plan_change_replaces_the_unpaid_renewal_it_predates(at: datetime) -> None:
    account = open_account(tax_rate="0.21")
    counter = Counter({OPENED: 600, FEB_15: 1200, MAR_15: 800})
    first, renewal = close(account, FEB_15 + GRACE, counter)
    # 1,200 on basic: tier 3 49.00
    assert (renewal.number, renewal.contacts, renewal.subtotal.amount) == (
        "PF-acc-7-0002",
        1200,
        D("49.00"),
    )
    # reported after the Feb 15 renewal was priced, dated at or before it
    account.change_plan(PRO, ("sms",), None, at)
    [replacement] = close(account, FEB_15 + timedelta(days=1), counter)
    assert replacement.number == "PF-acc-7-0003"
    assert replacement.period == period("2027-02-15", "2027-03-15")
    assert replacement.issued_on == date(2027, 2, 16)
    # the same 1,200 (never counted again), priced on Pro: tier 2 99.00 + sms 20.00;
    # a new subscription's first price: no minimum line. 119.00 x 21% = 24.99
    assert replacement.contacts == 1200
    assert lines(replacement) == [
        ("subscription", 1, D("99.00"), D("99.00")),
        ("product", 1, D("20.00"), D("20.00")),
    ]
    assert totals(replacement) == (D("119.00"), D("24.99"), D("143.99"))
    assert counter.asked == [OPENED, FEB_15]
    assert account.replaced == {"PF-acc-7-0002": "PF-acc-7-0003"}
    assert list(account.open_proformas) == ["PF-acc-7-0001", "PF-acc-7-0003"]
    assert account.open_proformas["PF-acc-7-0001"].document == first
    # the new subscription starts at that renewal (month 1), its floor this price
    sub = account.subscription
    assert (sub.number, sub.plan, sub.products, sub.period) == (2, PRO, ("sms",), "month")
    assert (sub.start_month, sub.periods_priced, sub.floor) == (1, 1, D("119.00"))
    assert account.pending is None
    # month 1 allows Pro's 4 x 1,200 = 4,800 at 0.0008; month 0 keeps basic's
    assert (account.months["1"].contacts, account.months["1"].allowance) == (1200, 4800)
    assert account.months["1"].unit_price == D("0.0008")
    assert (account.months["0"].allowance, account.months["0"].unit_price) == (2400, D("0.0010"))
    # nothing else to replace in a later run
    assert close(account, FEB_15 + timedelta(days=2), counter) == []
    # Mar 15 at 800: Pro tier 1 49.00 + sms 20.00 = 69.00, lifted by 50.00 to 119.00
    [march] = close(account, MAR_15 + GRACE, counter)
    assert march.number == "PF-acc-7-0004"
    assert lines(march) == [
        ("subscription", 1, D("49.00"), D("49.00")),
        ("product", 1, D("20.00"), D("20.00")),
        ("minimum_price", 1, None, D("50.00")),
    ]
    events = assert_replays(account)
    [replaced] = [e for e in events if type(e).__name__ == "ProformaReplaced"]
    assert replaced.replaced == "PF-acc-7-0002"
    assert replaced.proforma.document == replacement
    assert (replaced.subscription.number, replaced.subscription.floor) == (2, D("119.00"))
    assert [(m.index, m.contacts, m.allowance, m.unit_price) for m in replaced.months] == [
        (1, 1200, 4800, D("0.0008"))
    ]


@pytest.mark.parametrize(
    "case",
    [
        pytest.param("dated-after", id="dated-one-microsecond-after-the-renewal"),
        pytest.param("paid", id="dated-before-but-the-renewal-is-paid"),
    ],
)
def test_a_plan_change_that_cannot_replace_applies_at_the_next_renewal(case: str) -> None:
    account = open_account()
    counter = Counter({OPENED: 600, FEB_15: 1200, MAR_15: 800})
    close(account, FEB_15 + GRACE, counter)
    if case == "paid":
        account.pay("PF-acc-7-0002", utc(2027, 2, 15, 12), numbers())
        account.change_plan(PRO, ("sms",), None, utc(2027, 2, 14))
    else:
        account.change_plan(PRO, ("sms",), None, FEB_15 + MICRO)
    assert close(account, FEB_15 + timedelta(days=1), counter) == []
    assert account.replaced == {}
    assert account.subscription.number == 1
    assert account.pending is not None
    # month 1 stays basic's: 4 x 1,200 at 0.0010
    assert account.months["1"].unit_price == D("0.0010")
    [march] = close(account, MAR_15 + GRACE, counter)
    # Pro 800: tier 1 49.00 + sms 20.00 = 69.00, the new subscription's floor
    assert march.number == "PF-acc-7-0003"
    assert march.period == period("2027-03-15", "2027-04-15")
    assert lines(march) == [
        ("subscription", 1, D("49.00"), D("49.00")),
        ("product", 1, D("20.00"), D("20.00")),
    ]
    sub = account.subscription
    assert (sub.number, sub.start_month, sub.floor) == (2, 2, D("69.00"))
    assert "ProformaReplaced" not in event_names(assert_replays(account))


def test_a_replacement_carries_the_usage_of_the_replaced_proforma_and_bills_it_once() -> None:
    account = open_account()
    counter = Counter({OPENED: 100, FEB_15: 100, MAR_15: 100})
    account.record_emails(emails(450, utc(2027, 1, 20)))
    _, renewal = close(account, FEB_15 + GRACE, counter)
    # basic 100: tier 1 19.00; month 0: 400 allowed of 450 -> 50 x 0.0010 = 0.05
    assert lines(renewal) == [
        ("subscription", 1, D("19.00"), D("19.00")),
        ("included", 400, D("0"), D("0.00")),
        ("overage", 50, D("0.0010"), D("0.05")),
    ]
    account.change_plan(PRO, None, None, utc(2027, 2, 10))
    [replacement] = close(account, FEB_15 + timedelta(days=2), counter)
    # Pro 100: tier 1 49.00; month 0's lines carried unchanged, at basic's 0.0010
    assert replacement.number == "PF-acc-7-0003"
    assert lines(replacement) == [
        ("subscription", 1, D("49.00"), D("49.00")),
        ("included", 400, D("0"), D("0.00")),
        ("overage", 50, D("0.0010"), D("0.05")),
    ]
    assert totals(replacement) == (D("49.05"), D("0.00"), D("49.05"))
    assert account.months["0"].billed == 50
    assert account.late_months == ()
    # floor 49.00: the subscription lines only, never the overage
    assert account.subscription.floor == D("49.00")
    # month 1 on Pro: 4 x 100 = 400 allowed of 500 -> 100 x 0.0008 = 0.08;
    # month 0's 50 are not billed again
    account.record_emails(emails(500, utc(2027, 2, 20)))
    [march] = close(account, MAR_15 + GRACE, counter)
    assert lines(march) == [
        ("subscription", 1, D("49.00"), D("49.00")),
        ("included", 400, D("0"), D("0.00")),
        ("overage", 100, D("0.0008"), D("0.08")),
    ]
    assert account.months["0"].billed == 50
    invoice = account.pay("PF-acc-7-0003", utc(2027, 3, 16), numbers())
    assert invoice.proforma == "PF-acc-7-0003"
    assert lines(invoice) == lines(replacement)
    assert_replays(account)


def test_the_replacement_sets_the_new_floor_and_is_not_lifted_to_the_old_one() -> None:
    account = open_account(products=("automation",))
    counter = Counter({OPENED: 3000, FEB_15: 1200, MAR_15: 400})
    first, renewal = close(account, FEB_15 + GRACE, counter)
    # opening 3,000: tier 4 99.00 + 15.00 = 114.00, the floor;
    # Feb 15 1,200: 49.00 + 15.00 = 64.00, lifted by 50.00
    assert first.subtotal.amount == D("114.00")
    assert lines(renewal)[-1] == ("minimum_price", 1, None, D("50.00"))
    account.change_plan(BASIC, ("automation", "chat"), None, utc(2027, 2, 1))
    [replacement] = close(account, utc(2027, 2, 16), counter)
    # 1,200: 49.00 + automation 15.00 + chat 10.00 = 74.00: a new floor, not lifted to 114.00
    assert lines(replacement) == [
        ("subscription", 1, D("49.00"), D("49.00")),
        ("product", 1, D("15.00"), D("15.00")),
        ("product", 1, D("10.00"), D("10.00")),
    ]
    assert (account.subscription.number, account.subscription.floor) == (2, D("74.00"))
    # Mar 15 at 400: 19.00 + 15.00 + 10.00 = 44.00, lifted by 30.00 to the new floor
    [march] = close(account, MAR_15 + GRACE, counter)
    assert lines(march) == [
        ("subscription", 1, D("19.00"), D("19.00")),
        ("product", 1, D("15.00"), D("15.00")),
        ("product", 1, D("10.00"), D("10.00")),
        ("minimum_price", 1, None, D("30.00")),
    ]
    assert march.subtotal.amount == D("74.00")


def test_a_late_change_from_quarterly_to_monthly_prices_one_month_and_unprices_the_rest() -> None:
    account = open_account(period="quarter")
    counter = Counter({OPENED: 100, APR_15: 300, MAY_15: 250, JUN_15: 250})
    _, renewal = close(account, APR_15 + GRACE, counter)
    # 300: tier 1, 3 x 19.00 = 57.00 less 5% (2.85) = 54.15, equal to the floor
    assert (renewal.number, renewal.period, renewal.subtotal.amount) == (
        "PF-acc-7-0002",
        period("2027-04-15", "2027-07-15"),
        D("54.15"),
    )
    assert [account.months[str(i)].allowance for i in (3, 4, 5)] == [1200, 1200, 1200]
    # month 3 (Apr 15 - May 15): 2,000 sent; month 4 (May 15 - Jun 15): 1,600 sent
    account.record_emails(emails(2000, utc(2027, 4, 20)) + emails(1600, utc(2027, 5, 20)))
    account.change_plan(PRO6, None, "month", utc(2027, 4, 1))
    [replacement] = close(account, utc(2027, 4, 16), counter)
    # one month on Pro 6 at the same 300: tier 1 49.00
    assert (replacement.number, replacement.period, replacement.contacts) == (
        "PF-acc-7-0003",
        period("2027-04-15", "2027-05-15"),
        300,
    )
    assert lines(replacement) == [("subscription", 1, D("49.00"), D("49.00"))]
    sub = account.subscription
    assert (sub.number, sub.period, sub.start_month, sub.floor) == (2, "month", 3, D("49.00"))
    assert sub.next_renewal_month == 4
    # month 3: 6 x 300 = 1,800 at 0.0008; months 4 and 5 wait for their own renewals,
    # keeping the emails already counted in them
    assert [
        (m.contacts, m.allowance, m.unit_price, m.platform)
        for m in (account.months[str(i)] for i in (3, 4, 5))
    ] == [(300, 1800, D("0.0008"), 2000), (None, None, None, 1600), (None, None, None, 0)]
    # May 15 at 250: Pro tier 1 49.00 (the floor); month 3: 200 x 0.0008 = 0.16
    [may] = close(account, MAY_15 + GRACE, counter)
    assert (may.number, may.period, may.contacts) == (
        "PF-acc-7-0004",
        period("2027-05-15", "2027-06-15"),
        250,
    )
    assert lines(may) == [
        ("subscription", 1, D("49.00"), D("49.00")),
        ("included", 1800, D("0"), D("0.00")),
        ("overage", 200, D("0.0008"), D("0.16")),
    ]
    # month 4 priced at May 15: 6 x 250 = 1,500 of 1,600 -> 100 x 0.0008 = 0.08
    [june] = close(account, JUN_15 + GRACE, counter)
    assert lines(june) == [
        ("subscription", 1, D("49.00"), D("49.00")),
        ("included", 1500, D("0"), D("0.00")),
        ("overage", 100, D("0.0008"), D("0.08")),
    ]
    assert counter.asked == [OPENED, APR_15, MAY_15, JUN_15]
    events = assert_replays(account)
    [replaced] = [e for e in events if type(e).__name__ == "ProformaReplaced"]
    assert [(m.index, m.allowance) for m in replaced.months] == [(3, 1800), (4, None), (5, None)]


def test_a_late_change_from_monthly_to_quarterly_prices_the_months_ahead() -> None:
    account = open_account()
    counter = Counter({OPENED: 100, FEB_15: 200, MAY_15: 200})
    close(account, FEB_15 + GRACE, counter)
    assert account.months["1"].allowance == 800  # basic: 4 x 200
    assert "2" not in account.months
    account.change_plan(PRO6, None, "quarter", FEB_15)
    [replacement] = close(account, utc(2027, 2, 16), counter)
    # Pro 6 at 200: tier 1, 3 x 49.00 = 147.00 less 5% (7.35) = 139.65
    assert (replacement.number, replacement.period) == (
        "PF-acc-7-0003",
        period("2027-02-15", "2027-05-15"),
    )
    assert lines(replacement) == [
        ("subscription", 3, D("49.00"), D("147.00")),
        ("period_discount", 1, None, D("-7.35")),
    ]
    sub = account.subscription
    assert (sub.number, sub.period, sub.start_month, sub.floor) == (2, "quarter", 1, D("139.65"))
    assert sub.next_renewal_month == 4
    # months 1, 2, 3 each allow 6 x 200 = 1,200 at 0.0008
    assert [
        (m.contacts, m.allowance, m.unit_price) for m in (account.months[str(i)] for i in (1, 2, 3))
    ] == [(200, 1200, D("0.0008"))] * 3
    # month 2 (Mar 15 - Apr 15): 1,500 -> 300 x 0.0008 = 0.24; month 3: 1,200, none over
    account.record_emails(emails(1500, utc(2027, 3, 20)) + emails(1200, utc(2027, 4, 20)))
    # Mar 15 and Apr 15 are no renewals now: month 1 closes silently, month 2 on its own
    [april] = close(account, APR_15 + GRACE, counter)
    assert (april.number, april.period, april.contacts) == (
        "PF-acc-7-0004",
        period("2027-03-15", "2027-04-15"),
        None,
    )
    assert lines(april) == [
        ("included", 1200, D("0"), D("0.00")),
        ("overage", 300, D("0.0008"), D("0.24")),
    ]
    # May 15, the next quarter at 200: 139.65 again (the floor, no line)
    [may] = close(account, MAY_15 + GRACE, counter)
    assert (may.number, may.period) == ("PF-acc-7-0005", period("2027-05-15", "2027-08-15"))
    assert lines(may) == [
        ("subscription", 3, D("49.00"), D("147.00")),
        ("period_discount", 1, None, D("-7.35")),
        ("included", 1200, D("0"), D("0.00")),
    ]
    assert counter.asked == [OPENED, FEB_15, MAY_15]
    assert_replays(account)


def test_a_late_plan_change_seen_in_the_same_run_prices_the_month_billed_in_it() -> None:
    account = open_account(period="quarter")
    counter = Counter({OPENED: 100, APR_15: 100})
    close(account, APR_15 + GRACE, counter)  # PF-0002: Apr 15 - Jul 15 on basic
    account.record_emails(emails(1000, utc(2027, 4, 20)))
    account.change_plan(PRO, None, None, utc(2027, 4, 10))
    # one run past the end of month 3: first the replacement, then month 3's overage
    replacement, overage = close(account, MAY_15 + GRACE, counter)
    # Pro 100: 3 x 49.00 = 147.00 less 5% (7.35) = 139.65
    assert (replacement.number, replacement.period, replacement.subtotal.amount) == (
        "PF-acc-7-0003",
        period("2027-04-15", "2027-07-15"),
        D("139.65"),
    )
    # month 3: 4 x 100 = 400 of 1,000 -> 600 x Pro's 0.0008 = 0.48 (not basic's 0.60)
    assert (overage.number, overage.period) == ("PF-acc-7-0004", period("2027-04-15", "2027-05-15"))
    assert lines(overage) == [
        ("included", 400, D("0"), D("0.00")),
        ("overage", 600, D("0.0008"), D("0.48")),
    ]


def test_a_late_plan_change_waits_once_a_month_of_the_renewal_is_documented() -> None:
    account = open_account(period="quarter")
    counter = Counter({OPENED: 100, APR_15: 100, JUL_15: 100})
    close(account, MAY_15 + GRACE, counter)  # month 3 (Apr 15 - May 15) documented
    assert account.documented_months == 4
    account.change_plan(PRO, None, None, utc(2027, 4, 10))
    assert close(account, MAY_15 + timedelta(days=1), counter) == []
    assert account.replaced == {}
    assert list(account.open_proformas) == ["PF-acc-7-0001", "PF-acc-7-0002"]
    # applies at the next renewal: Pro 100 quarterly 139.65
    [july] = close(account, JUL_15 + GRACE, counter)
    assert (july.number, july.period, july.subtotal.amount) == (
        "PF-acc-7-0003",
        period("2027-07-15", "2027-10-15"),
        D("139.65"),
    )
    assert (account.subscription.number, account.subscription.start_month) == (2, 6)


def test_a_late_plan_change_can_replace_the_opening_period() -> None:
    account = open_account()
    counter = Counter({OPENED: 600, FEB_15: 400})
    [first] = close(account, OPENED + GRACE, counter)  # basic 600: 29.00
    account.change_plan(PRO, None, None, OPENED)  # dated at the opening instant
    [replacement] = close(account, utc(2027, 1, 16), counter)
    # Pro 600: tier 1 49.00, for the opening's period; the new subscription starts at month 0
    assert (replacement.number, replacement.period, replacement.contacts) == (
        "PF-acc-7-0002",
        period("2027-01-15", "2027-02-15"),
        600,
    )
    assert lines(replacement) == [("subscription", 1, D("49.00"), D("49.00"))]
    assert account.replaced == {first.number: "PF-acc-7-0002"}
    sub = account.subscription
    assert (sub.number, sub.start_month, sub.floor) == (2, 0, D("49.00"))
    assert (account.months["0"].allowance, account.months["0"].unit_price) == (2400, D("0.0008"))
    # Feb 15 at 400: Pro tier 1 49.00, the floor: no line
    [renewal] = close(account, FEB_15 + GRACE, counter)
    assert lines(renewal) == [("subscription", 1, D("49.00"), D("49.00"))]
    assert counter.asked == [OPENED, FEB_15]
    assert_replays(account)


def test_a_late_plan_change_replaces_only_the_latest_renewal() -> None:
    account = open_account()
    counter = Counter({OPENED: 600, FEB_15: 600})
    first, _ = close(account, FEB_15 + GRACE, counter)
    # dated even before the opening: the opening's proforma stands all the same
    account.change_plan(PRO, None, None, OPENED - timedelta(hours=1))
    [replacement] = close(account, utc(2027, 2, 16), counter)
    # Pro 600: tier 1 49.00, for Feb 15 - Mar 15 only
    assert (replacement.number, replacement.period) == (
        "PF-acc-7-0003",
        period("2027-02-15", "2027-03-15"),
    )
    assert lines(replacement) == [("subscription", 1, D("49.00"), D("49.00"))]
    assert account.replaced == {"PF-acc-7-0002": "PF-acc-7-0003"}
    assert account.open_proformas["PF-acc-7-0001"].document == first
    assert lines(first) == [("subscription", 1, D("29.00"), D("29.00"))]
    assert (account.months["0"].allowance, account.months["0"].unit_price) == (2400, D("0.0010"))


def test_paying_a_replaced_proforma_names_the_proforma_that_replaced_it() -> None:
    account = open_account()
    counter = Counter({OPENED: 600, FEB_15: 600})
    close(account, FEB_15 + GRACE, counter)  # both issued on Feb 15
    account.pay("PF-acc-7-0001", utc(2027, 2, 15, 12), numbers())
    account.change_plan(PRO, None, None, utc(2027, 2, 1))
    [second] = close(account, utc(2027, 2, 16), counter)
    # a second late change, dated before the same renewal, replaces the replacement
    account.change_plan(PRO, ("chat",), None, utc(2027, 2, 2))
    [third] = close(account, utc(2027, 2, 17), counter)
    # Pro 600: 49.00; + chat 10.00
    assert (second.number, second.subtotal.amount) == ("PF-acc-7-0003", D("49.00"))
    assert (third.number, third.subtotal.amount) == ("PF-acc-7-0004", D("59.00"))
    assert account.replaced == {
        "PF-acc-7-0002": "PF-acc-7-0003",
        "PF-acc-7-0003": "PF-acc-7-0004",
    }
    assert account.subscription.number == 3
    years: list[int] = []
    numbering = numbers()

    def next_number(year: int) -> str:
        years.append(year)
        return numbering(year)

    # each replaced id leads to the one payable now
    for replaced in ("PF-acc-7-0002", "PF-acc-7-0003"):
        with pytest.raises(ProformaNotFound) as refused:
            account.pay(replaced, utc(2027, 2, 18), next_number)
        assert str(refused.value).endswith("; it was replaced by PF-acc-7-0004")
    # paid or unknown: no such hint
    for gone in ("PF-acc-7-0001", "PF-acc-7-0099"):
        with pytest.raises(ProformaNotFound) as refused:
            account.pay(gone, utc(2027, 2, 18), next_number)
        assert "replaced" not in str(refused.value)
    assert years == []
    invoice = account.pay("PF-acc-7-0004", utc(2027, 2, 18), next_number)
    assert (invoice.proforma, invoice.subtotal.amount) == ("PF-acc-7-0004", D("59.00"))
    assert_replays(account)


def test_a_paid_proforma_is_never_replaced() -> None:
    account = open_account()
    counter = Counter({OPENED: 600})
    close(account, OPENED + GRACE, counter)
    account.pay("PF-acc-7-0001", utc(2027, 1, 16), numbers())
    counter.counts[OPENED] = 1200
    assert close(account, utc(2027, 1, 20), counter) == []
    assert account.proforma_count == 1
    assert account.subscription.floor == D("29.00")
    assert_replays(account)


def test_a_plan_change_dated_after_a_renewal_waits_for_the_next_one_even_if_not_yet_priced() -> (
    None
):
    account = open_account()
    counter = Counter({OPENED: 600, FEB_15: 600, MAR_15: 600})
    close(account, OPENED + GRACE, counter)
    # Feb 15 03:00 is after the Feb 15 renewal instant, which is priced only at 06:00.
    account.change_plan(PRO, (), None, utc(2027, 2, 15, 3))
    [feb] = close(account, FEB_15 + GRACE, counter)
    # still basic: 600 contacts, tier 2, 29.00
    assert lines(feb) == [("subscription", 1, D("29.00"), D("29.00"))]
    [mar] = close(account, MAR_15 + GRACE, counter)
    # Pro from Mar 15: 600 contacts, tier 1 (<=1,000) 49.00
    assert lines(mar) == [("subscription", 1, D("49.00"), D("49.00"))]
    assert (account.subscription.plan, account.subscription.number) == (PRO, 2)
    assert_replays(account)


def test_a_plan_change_dated_at_the_opening_prices_the_first_period_on_the_new_plan() -> None:
    account = open_account()
    account.change_plan(PRO, ("sms",), None, OPENED)
    counter = Counter({OPENED: 600})
    [first] = close(account, OPENED + GRACE, counter)
    # no basic proforma to replace: Pro tier 1 49.00 + sms 20.00 = 69.00, the floor
    assert first.number == "PF-acc-7-0001"
    assert lines(first) == [
        ("subscription", 1, D("49.00"), D("49.00")),
        ("product", 1, D("20.00"), D("20.00")),
    ]
    assert account.subscription.floor == D("69.00") and account.pending is None
    assert not account.replaced
    assert_replays(account)
