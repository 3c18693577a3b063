"""Money in on both account aggregates: receivables, allocations, credit, final invoices.

Amounts by hand. Email account (STARTER, postpaid, tax 0, opened 2026-01-05):
each month's invoice is its fee, 10.00. Contacts account (contacts-basic, no
billable contact, no product, tax 0, opened 2027-01-15 10:00): each renewal is
tier 1, 19.00.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from contacts_builders import GRACE, OPENED, Counter, assert_replays, event_names
from contacts_builders import open_account as open_contacts
from payments_builders import POLICY
from unit_builders import STARTER, numbers, utc

from ledger.application import Ledger
from ledger.contacts.account import ContactsAccount
from ledger.contacts.proformas import InvalidPayment, ProformaNotFound
from ledger.documents import PaymentMode
from ledger.emails.account import Account
from ledger.errors import InvalidAmount
from ledger.money import Money, SubMinorUnit
from ledger.payments.allocation import Allocation, Credit
from ledger.payments.held import PaymentReport
from ledger.payments.receivables import Receivable

DAY = timedelta(days=1)
D = Decimal


def eur(amount: str) -> Money:
    return Money(Decimal(amount), "EUR")


def email_account(mode: PaymentMode = "postpaid") -> Account:
    return Account.open(
        account_id="acc-1",
        plan=STARTER,
        payment_mode=mode,
        currency="EUR",
        timezone="UTC",
        tax_rate=Decimal(0),
        opened_at=utc(2026, 1, 5, 9),
    )


def pay(
    account: Account, amount: str, reference: str | None, payment_id: str = "bridge p-1", **kw: Any
) -> int:
    currency, at = kw.pop("currency", "EUR"), kw.pop("at", utc(2026, 2, 3))
    report = PaymentReport.of(payment_id, Decimal(amount), currency, reference, None, at)
    return account.receive_payment(report, POLICY)


def replayed(events: list[Any]) -> Any:
    copy: Any = None
    for event in events:
        copy = event.mutate(copy)
    return copy


def payment_state(account: Any) -> tuple[Any, Any]:
    return (account.receivables, account.credit)


# ---------------------------------------------------------------- email accounts


def test_a_postpay_invoice_is_a_receivable_due_fourteen_days_after_its_date() -> None:
    account = email_account()
    account.close_periods(utc(2026, 2, 2), DAY, numbers())
    assert account.receivables == {
        "2026-000001": Receivable(
            "2026-000001",
            eur("10.00"),
            Money.zero("EUR"),
            date(2026, 2, 2),
            date(2026, 2, 16),
            "transfer",
        )
    }
    assert account.amount_owed == eur("10.00")


def test_a_full_payment_pays_the_invoice_and_records_its_allocation() -> None:
    account = email_account()
    account.close_periods(utc(2026, 2, 2), DAY, numbers())
    account.collect_events()
    balance = account.balance
    version = pay(account, "10.00", "2026-000001")
    [event] = account.collect_events()
    assert (type(event).__name__, event.originator_version) == ("PaymentReceived", version)
    assert event.allocations == (Allocation("bridge p-1", "2026-000001", eur("10.00"), None),)
    assert (list(event.unapplied), list(event.credit)) == ([], [])
    assert account.receivables["2026-000001"].state == "paid"
    assert account.amount_owed == eur("0")
    assert account.balance == balance  # a payment is never prepaid credit


def test_two_partial_payments_leave_the_rest_due_then_pay_it() -> None:
    account = email_account()
    account.close_periods(utc(2026, 2, 2), DAY, numbers())
    pay(account, "4.00", "2026-000001", "bridge p-1")
    assert account.receivables["2026-000001"].state == "partially_paid"
    assert account.receivables["2026-000001"].amount_due == eur("6.00")  # 10.00 - 4.00
    pay(account, "6.00", "2026-000001", "bridge p-2")
    assert account.receivables["2026-000001"].state == "paid"
    events = [e for e in account.collect_events() if type(e).__name__ == "PaymentReceived"]
    assert [a.amount for e in events for a in e.allocations] == [eur("4.00"), eur("6.00")]


def test_an_overpayment_is_held_then_pays_the_next_invoice_at_its_issue() -> None:
    account = email_account()
    account.close_periods(utc(2026, 2, 2), DAY, numbers())
    pay(account, "13.50", "2026-000001")
    # 13.50 - 10.00 = 3.50 held
    assert account.credit == [Credit("bridge p-1", eur("3.50"), "overpayment", "2026-000001")]
    assert account.unapplied_credit == eur("3.50")
    account.collect_events()
    account.close_periods(utc(2026, 3, 2), DAY, lambda year: "2026-000002")
    assert event_names(account.collect_events()) == [
        "DocumentIssued",
        "MonthOpened",
        "CreditApplied",
    ]
    assert account.credit == []
    # 10.00 - 3.50 = 6.50 due on February's invoice
    assert account.receivables["2026-000002"].paid == eur("3.50")
    assert account.amount_owed == eur("6.50")


def test_a_payment_naming_a_prepaid_receipt_is_held_and_the_balance_does_not_move() -> None:
    account = email_account("prepaid")
    account.purchase_credit(eur("30.00"), "top-up-1", utc(2026, 1, 6))
    account.close_periods(utc(2026, 2, 2), DAY, numbers())
    assert account.receivables["2026-000001"].state == "paid"  # settled from the balance
    balance = account.balance
    pay(account, "30.00", "2026-000001")
    assert account.balance == balance
    assert account.credit == [Credit("bridge p-1", eur("30.00"), "already_paid", "2026-000001")]


def test_another_currency_is_held_and_never_allocated() -> None:
    account = email_account()
    account.close_periods(utc(2026, 2, 2), DAY, numbers())
    pay(account, "10.00", "2026-000001", currency="USD")
    assert account.credit == [
        Credit("bridge p-1", Money(D("10.00"), "USD"), "other_currency", "2026-000001")
    ]
    assert account.amount_owed == eur("10.00")
    assert account.unapplied_credit == eur("0")


@pytest.mark.parametrize(
    ("amount", "error"), [("0", InvalidAmount), ("-1.00", InvalidAmount), ("1.001", SubMinorUnit)]
)
def test_a_payment_of_nothing_or_of_a_fraction_of_a_cent_is_refused_and_records_nothing(
    amount: str, error: type[Exception]
) -> None:
    account = email_account()
    account.collect_events()
    with pytest.raises(error):
        pay(account, amount, None)
    assert account.collect_events() == []
    assert payment_state(account) == ({}, [])


def test_a_failed_payment_of_a_transfer_paid_invoice_is_recorded_and_changes_nothing() -> None:
    """The customer's own failed transfer answers no collection request: the ledger's
    dunning follows its due dates (docs/payments.md)."""
    account = email_account()
    account.close_periods(utc(2026, 2, 2), DAY, numbers())
    before = payment_state(account)
    account.collect_events()
    report = PaymentReport.of("bridge f-1", D("10.00"), "EUR", "2026-000001", None, utc(2026, 2, 3))
    account.record_payment_failure(report, "insufficient funds", retryable=True, policy=POLICY)
    [event] = account.collect_events()
    assert (type(event).__name__, event.reason, event.retryable) == (
        "PaymentFailed",
        "insufficient funds",
        True,
    )
    assert payment_state(account) == before


def test_payments_replay_to_the_same_state_and_survive_the_store_encoding() -> None:
    account = email_account()
    account.close_periods(utc(2026, 2, 2), DAY, numbers())
    pay(account, "13.50", "2026-000001", "bridge p-1")
    pay(account, "2.00", "NOPE", "bridge p-2")
    account.close_periods(utc(2026, 3, 2), DAY, lambda year: "2026-000002")
    events = account.collect_events()
    ledger = Ledger()
    try:
        mapper = ledger.mapper
        stored = [mapper.to_domain_event(mapper.to_stored_event(e)) for e in events]
    finally:
        ledger.close()
    for copy in (replayed(events), replayed(stored)):
        assert payment_state(copy) == payment_state(account)
    # 3.50 + 2.00 = 5.50 of February's 10.00: 4.50 due
    assert account.amount_owed == eur("4.50")


def test_a_snapshot_from_before_payments_upcasts_to_no_credit_and_no_receivable() -> None:
    state: dict[str, Any] = {"account_id": "acc-1"}
    Account.upcast_v1_v2(state)
    assert (state["receivables"], state["credit"]) == ({}, [])


# ---------------------------------------------------------------- contacts accounts


def contacts_with_proforma() -> ContactsAccount:
    account = open_contacts()
    [proforma] = account.close_periods(OPENED + GRACE, GRACE, Counter({OPENED: 0}), numbers())
    assert (proforma.number, proforma.total) == ("PF-acc-7-0001", eur("19.00"))
    return account  # its events still pending: assert_replays replays the whole history


def receive(
    account: ContactsAccount, amount: str, reference: str | None, at: datetime, **kw: Any
) -> tuple[int, list[Any]]:
    payment_id = kw.pop("payment_id", "bridge p-1")
    report = PaymentReport.of(payment_id, Decimal(amount), "EUR", reference, None, at)
    return account.receive_payment(report, kw.pop("next_number", numbers()), POLICY)


def test_a_proforma_paid_in_full_becomes_the_invoice_with_the_next_number() -> None:
    account = contacts_with_proforma()
    version, [invoice] = receive(account, "19.00", "PF-acc-7-0001", utc(2027, 1, 16))
    assert (invoice.number, invoice.kind, invoice.proforma) == (
        "2027-000001",
        "invoice",
        "PF-acc-7-0001",
    )
    assert invoice.issued_on == date(2027, 1, 16)
    events = assert_replays(account)
    assert event_names(events)[-2:] == ["PaymentReceived", "ProformaPaid"]
    assert events[-2].originator_version == version  # what the dedupe key points at
    assert account.open_proformas == {}
    assert account.receivables["PF-acc-7-0001"].state == "paid"
    assert account.receivables["2027-000001"].state == "paid"


def test_a_partly_paid_proforma_stays_a_proforma_until_the_rest_arrives() -> None:
    account = contacts_with_proforma()
    _, invoices = receive(account, "9.00", "PF-acc-7-0001", utc(2027, 1, 16))
    assert invoices == []
    assert account.receivables["PF-acc-7-0001"].amount_due == eur("10.00")  # 19.00 - 9.00
    # mark-paid receives what is still due: 10.00, and issues the invoice
    invoice = account.pay("PF-acc-7-0001", utc(2027, 1, 17), numbers())
    assert invoice.number == "2027-000001"
    events = assert_replays(account)
    assert event_names(events)[-3:] == ["PaymentReceived", "PaymentReceived", "ProformaPaid"]
    assert events[-2].allocations == (
        Allocation("mark-paid:PF-acc-7-0001", "PF-acc-7-0001", eur("10.00"), None),
    )


def test_a_payment_before_the_proformas_date_is_refused_with_no_number_drawn() -> None:
    account = contacts_with_proforma()
    account.collect_events()
    drawn: list[int] = []

    def next_number(year: int) -> str:
        drawn.append(year)
        return "2027-000001"

    with pytest.raises(InvalidPayment):
        receive(account, "19.00", "PF-acc-7-0001", utc(2027, 1, 14), next_number=next_number)
    assert drawn == []
    assert account.collect_events() == []
    assert account.receivables["PF-acc-7-0001"].paid == Money.zero("EUR")


def test_held_credit_pays_the_next_proforma_at_its_issue_and_issues_its_invoice() -> None:
    account = contacts_with_proforma()
    # 19.00 paid, then 25.00 more for it: already paid, held
    receive(account, "19.00", "PF-acc-7-0001", utc(2027, 1, 16))
    receive(account, "25.00", "PF-acc-7-0001", utc(2027, 1, 20), payment_id="bridge p-2")
    assert account.credit == [Credit("bridge p-2", eur("25.00"), "already_paid", "PF-acc-7-0001")]
    renewal = utc(2027, 2, 15)
    documents = account.close_periods(
        renewal + GRACE, GRACE, Counter({renewal: 0}), lambda year: "2027-000002"
    )
    # The renewal's 19.00 comes from the 25.00: paid in full, 6.00 still held
    assert [(d.number, d.kind) for d in documents] == [
        ("PF-acc-7-0002", "proforma"),
        ("2027-000002", "invoice"),
    ]
    assert account.credit == [Credit("bridge p-2", eur("6.00"), "already_paid", "PF-acc-7-0001")]
    assert event_names(assert_replays(account))[-3:] == [
        "ProformaIssued",
        "CreditApplied",
        "ProformaPaid",
    ]


def test_mark_paid_refuses_a_paid_proforma_as_before() -> None:
    account = contacts_with_proforma()
    account.pay("PF-acc-7-0001", utc(2027, 1, 16), numbers())
    with pytest.raises(ProformaNotFound):
        account.pay("PF-acc-7-0001", utc(2027, 1, 17), numbers())


def test_a_contacts_snapshot_from_before_payments_owes_its_open_proformas() -> None:
    account = contacts_with_proforma()
    ledger = Ledger()
    try:
        encoded = ledger.mapper.transcoder.encode(
            {"open_proformas": account.open_proformas, "invoices": []}
        )
        state = ledger.mapper.transcoder.decode(encoded)
    finally:
        ledger.close()
    ContactsAccount.upcast_v1_v2(state)
    assert state["receivables"] == account.receivables
    assert state["credit"] == []
    assert json.loads(encoded)  # plain JSON, as stored
