"""What each allowance-month boundary bills, with plain values (ledger.contacts.billing_cycle)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from contacts_builders import BASIC, PRO
from unit_builders import utc

from ledger.contacts import billing_cycle
from ledger.contacts.renewal import RenewalPeriod
from ledger.contacts.subscriptions import Subscription
from ledger.documents import Line
from ledger.money import Money

BOUNDARY = utc(2027, 2, 15)
CURRENT = Subscription(1, BASIC, (), "month", start_month=0, periods_priced=1)
NEXT = Subscription(2, PRO, (), "quarter", start_month=-1)


def line(amount: str) -> Line:
    return Line("overage", "Emails beyond the allowance", 1, None, Money.of(amount, "EUR"))


def test_a_boundary_is_billed_once_it_is_grace_old() -> None:
    grace = timedelta(hours=6)
    assert not billing_cycle.is_due(BOUNDARY, grace, BOUNDARY + grace - timedelta(seconds=1))
    assert billing_cycle.is_due(BOUNDARY, grace, BOUNDARY + grace)


def test_the_subscriptions_next_period_start_is_a_renewal_unless_the_account_closed_before() -> (
    None
):
    def bill(closed_at: object) -> str:
        return billing_cycle.boundary_bill(
            next_month=1,
            next_renewal_month=1,
            boundary=BOUNDARY,
            closed_at=closed_at,  # type: ignore[arg-type]
            usage=[],
        )

    assert bill(None) == "renewal"
    assert bill(BOUNDARY) == "renewal"  # closed at the instant: that period was ordered
    assert bill(BOUNDARY - timedelta(microseconds=1)) == "nothing"


def test_between_renewals_only_overage_that_rounds_to_a_cent_gets_a_proforma() -> None:
    def bill(*usage: Line) -> str:
        return billing_cycle.boundary_bill(
            next_month=2, next_renewal_month=3, boundary=BOUNDARY, closed_at=None, usage=usage
        )

    assert bill(line("0.01")) == "overage"
    assert bill(line("0.00"), line("0.00")) == "nothing"
    assert bill() == "nothing"


def test_a_closed_account_stops_once_nothing_from_its_paid_months_is_left() -> None:
    closed = utc(2027, 2, 20)

    def stopped(month_start: object, emails: bool, *late: Line) -> bool:
        return billing_cycle.billing_stopped(
            closed_at=closed,
            month_start=month_start,  # type: ignore[arg-type]
            emails_from_then_on=emails,
            late=late,
        )

    assert not stopped(utc(2027, 2, 15), False)  # the closing month is still billed
    assert stopped(utc(2027, 3, 15), False)
    assert not stopped(utc(2027, 3, 15), True)  # emails sent after the closing
    assert not stopped(utc(2027, 3, 15), False, line("0.01"))
    assert stopped(utc(2027, 3, 15), False, line("0.00"))  # under half a cent: never invoiced
    assert not billing_cycle.billing_stopped(
        closed_at=None, month_start=utc(2030, 1, 1), emails_from_then_on=False, late=()
    )


def test_a_plan_change_prices_the_renewal_it_is_dated_at_or_before() -> None:
    at = BOUNDARY

    def terms(pending_at: object) -> Subscription:
        return billing_cycle.terms_at(CURRENT, NEXT, pending_at, 1, at)  # type: ignore[arg-type]

    assert terms(at) == Subscription(2, PRO, (), "quarter", start_month=1)
    assert terms(at + timedelta(microseconds=1)) == CURRENT
    assert billing_cycle.terms_at(CURRENT, None, None, 1, at) == CURRENT


def test_a_late_plan_change_replaces_only_a_renewal_none_of_whose_months_is_billed() -> None:
    def replaceable(pending_at: object, documented: int) -> bool:
        return billing_cycle.can_replace(
            pending_at=pending_at,  # type: ignore[arg-type]
            counted_at=BOUNDARY,
            documented_months=documented,
            start_month=1,
        )

    assert replaceable(BOUNDARY, 1)
    assert not replaceable(BOUNDARY + timedelta(microseconds=1), 1)
    assert not replaceable(BOUNDARY, 2)


def test_overage_left_unbilled_is_carried_in_month_order() -> None:
    assert billing_cycle.carried({3: 0, 1: 2, 0: 5}) == (0, 1)
    assert billing_cycle.carried({}) == ()


def test_scheduling_and_cancelling_a_plan_change() -> None:
    assert billing_cycle.scheduled(CURRENT, PRO, (), "quarter", BOUNDARY, cancelled=False) == (
        NEXT,
        BOUNDARY,
    )
    assert billing_cycle.scheduled(CURRENT, PRO, (), "quarter", BOUNDARY, cancelled=True) == (
        None,
        None,
    )


def test_a_scheduled_change_is_used_up_once_its_subscription_is_priced() -> None:
    started = Subscription(2, PRO, (), "quarter", start_month=1, periods_priced=1)
    assert billing_cycle.pending_after(NEXT, BOUNDARY, CURRENT, started) == (None, None)
    renewed = Subscription(1, BASIC, (), "month", start_month=0, periods_priced=2)
    assert billing_cycle.pending_after(NEXT, BOUNDARY, CURRENT, renewed) == (NEXT, BOUNDARY)


def test_the_first_price_sets_the_floor_and_later_ones_are_lifted_to_it() -> None:
    period = RenewalPeriod(utc(2027, 1, 15).date(), utc(2027, 2, 15).date())
    first = billing_cycle.priced_lines(CURRENT, period, 10, "EUR", sets_floor=True)
    assert billing_cycle.lines_total(first) == Decimal("19.00")  # tier <=500
    floored = Subscription(1, BASIC, (), "month", 0, 1, floor=Decimal("29.00"))
    lifted = billing_cycle.priced_lines(floored, period, 10, "EUR", sets_floor=False)
    assert [entry.kind for entry in lifted] == ["subscription", "minimum_price"]
    assert billing_cycle.lines_total(lifted) == Decimal("29.00")


def test_asking_for_terms_schedules_cancels_or_changes_nothing() -> None:
    assert billing_cycle.plan_change(CURRENT, None, BASIC, (), "month") is None
    assert billing_cycle.plan_change(CURRENT, None, PRO, (), "quarter") == "schedule"
    assert billing_cycle.plan_change(CURRENT, NEXT, BASIC, (), "month") == "cancel"
    assert billing_cycle.plan_change(CURRENT, NEXT, PRO, (), "quarter") is None
    assert billing_cycle.plan_change(CURRENT, NEXT, PRO, (), "year") == "schedule"
