"""A postpay email account's invoices overdue, the account suspended and reinstated,
and what suspension does to sending, usage and the next invoice (docs/payments.md).

By hand: STARTER (fee 10.00, 1,000 emails included), postpaid, tax 0, UTC,
opened 2026-01-05 09:00. January's invoice 2026-000001 (10.00) is issued at the
close of 2026-02-01 06:00 and due 14 days after its date, on 2026-02-15: it is
overdue from the next local midnight, 2026-02-16 00:00Z, and suspends the
account 14 days after that, on 2026-03-02 00:00Z.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from payments_builders import POLICY
from unit_builders import STARTER, numbers, platform_emails, utc

from ledger.emails.account import Account
from ledger.money import Money
from ledger.payments.held import PaymentReport

INVOICE = "2026-000001"
OVERDUE = utc(2026, 2, 16)
SUSPENDING = utc(2026, 3, 2)


def eur(amount: str) -> Money:
    return Money(Decimal(amount), "EUR")


def with_invoice() -> Account:
    account = Account.open(
        account_id="acc-1",
        plan=STARTER,
        payment_mode="postpaid",
        currency="EUR",
        timezone="UTC",
        tax_rate=Decimal(0),
        opened_at=utc(2026, 1, 5, 9),
    )
    [invoice] = account.close_periods(utc(2026, 2, 1, 6), timedelta(hours=6), numbers())
    assert (invoice.number, invoice.total, str(invoice.due_on)) == (
        INVOICE,
        eur("10.00"),
        "2026-02-15",
    )
    account.collect_events()
    return account


def names(events: list[Any]) -> list[str]:
    return [type(e).__name__ for e in events]


def test_an_invoice_unpaid_past_its_due_date_opens_an_overdue_notice() -> None:
    account = with_invoice()
    assert account.next_chase_at(POLICY) == OVERDUE
    assert account.collect(OVERDUE - timedelta(microseconds=1), POLICY) == []
    assert account.collect_events() == []
    assert account.collect(OVERDUE + timedelta(hours=5), POLICY) == []
    [change] = account.collect_events()
    # dated when it became true, not at the scan
    assert (change.effective_at, change.state, change.delinquent) == (
        OVERDUE,
        "past_due",
        {INVOICE: "past_due"},
    )
    assert [(t.from_state, t.to_state, t.reason) for t in change.transitions] == [
        ("current", "past_due", f"{INVOICE} (10.00 EUR due) unpaid past its due date 2026-02-15")
    ]
    [(kind, notice)] = [(c.change, c.notice) for c in change.notice_changes]
    assert kind == "opened"
    assert (notice.notice_id, notice.kind, notice.amount_due, notice.reason) == (
        f"{INVOICE}/overdue",
        "overdue",
        eur("10.00"),
        "unpaid past its due date 2026-02-15",
    )
    assert (notice.attempt, notice.next_attempt_at, notice.opened_at) == (None, None, OVERDUE)
    assert change.collections == ()
    assert account.next_chase_at(POLICY) == SUSPENDING
    # a postpay account past due may still send
    assert account.blocked is False


def test_a_scan_that_comes_late_records_each_fact_when_it_became_true() -> None:
    account = with_invoice()
    account.collect(utc(2026, 3, 5), POLICY)
    overdue, suspended, blocked = account.collect_events()
    assert names([overdue, suspended, blocked]) == [
        "DunningChanged",
        "DunningChanged",
        "SendingBlocked",
    ]
    assert (overdue.effective_at, overdue.state) == (OVERDUE, "past_due")
    assert (suspended.effective_at, suspended.state) == (SUSPENDING, "suspended")
    assert [(t.from_state, t.to_state, t.reason) for t in suspended.transitions] == [
        (
            "past_due",
            "suspended",
            f"{INVOICE} (10.00 EUR due) unpaid 14 days after its due date 2026-02-15",
        )
    ]
    assert [
        (c.change, c.notice.notice_id, c.notice.amount_due) for c in suspended.notice_changes
    ] == [("opened", f"{INVOICE}/suspended", eur("10.00"))]
    assert blocked.effective_at == SUSPENDING
    assert account.next_chase_at(POLICY) is None
    assert account.collect(utc(2026, 3, 6), POLICY) == []
    assert account.collect_events() == []


def test_a_suspended_account_keeps_its_usage_billed_and_is_reinstated_when_paid() -> None:
    account = with_invoice()
    account.collect(SUSPENDING, POLICY)
    account.collect_events()
    assert (account.suspended, account.blocked) == (True, True)
    # usage sent while suspended is still recorded and billed: 1,200 in February,
    # 200 beyond the 1,000 included at 0.0010 = 0.20
    account.record_emails(platform_emails(1200, utc(2026, 2, 20)))
    [recorded] = account.collect_events()
    assert (type(recorded).__name__, recorded.charged) == ("EmailsRecorded", eur("0.2000"))
    assert account.blocked is True
    [february] = account.close_periods(
        utc(2026, 3, 1, 6), timedelta(hours=6), lambda year: "2026-000002"
    )
    # fee 10.00 + 0.20 = 10.20
    assert february.total == eur("10.20")
    account.collect_events()
    # January paid by transfer: reinstated (February is not due yet), sending unblocked
    at = utc(2026, 3, 3, 12)
    report = PaymentReport.of("bridge p-1", Decimal("10.00"), "EUR", INVOICE, None, at)
    account.receive_payment(report, POLICY)
    received, change, unblocked = account.collect_events()
    assert names([received, change, unblocked]) == [
        "PaymentReceived",
        "DunningChanged",
        "SendingUnblocked",
    ]
    assert [(t.from_state, t.to_state) for t in change.transitions] == [("suspended", "current")]
    assert [
        (c.change, c.notice.notice_id, c.notice.resolved_at) for c in change.notice_changes
    ] == [
        ("resolved", f"{INVOICE}/overdue", at),
        ("resolved", f"{INVOICE}/suspended", at),
    ]
    assert (account.suspended, account.blocked, account.notices) == (False, False, {})
    # February's own due date is next: 2026-03-01 + 14 = 03-15, overdue from 03-16
    assert account.next_chase_at(POLICY) == utc(2026, 3, 16)


def test_paying_one_of_two_late_invoices_keeps_a_suspended_account_suspended() -> None:
    account = with_invoice()
    account.close_periods(utc(2026, 3, 1, 6), timedelta(hours=6), lambda year: "2026-000002")
    account.collect(utc(2026, 3, 20), POLICY)  # January suspends, February is overdue
    assert (account.dunning_state, account.delinquent) == (
        "suspended",
        {INVOICE: "suspending", "2026-000002": "past_due"},
    )
    account.collect_events()
    report = PaymentReport.of(
        "bridge p-1", Decimal("10.00"), "EUR", INVOICE, None, utc(2026, 3, 21)
    )
    account.receive_payment(report, POLICY)
    _, change = account.collect_events()
    assert (change.state, change.transitions) == ("suspended", ())
    assert [(c.change, c.notice.notice_id) for c in change.notice_changes] == [
        ("resolved", f"{INVOICE}/overdue")
    ]
    assert account.blocked is True


def test_a_snapshot_from_before_dunning_upcasts_to_current() -> None:
    state: dict[str, Any] = {}
    Account.upcast_v2_v3(state)
    assert state == {"collections": {}, "dunning_state": "current", "delinquent": {}, "notices": {}}
