from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unit_builders import (
    STARTER,
    USD_STARTER,
    VOLUME,
    numbers,
    platform_emails,
    smtp_emails,
    utc,
)

from ledger.account import Account, SentEmail, account_uuid
from ledger.documents import Document, PaymentMode
from ledger.errors import AccountClosed, InvalidAmount, LedgerError, PlanNotAllowed
from ledger.money import Money, SubMinorUnit, UnknownCurrency
from ledger.periods import InvalidTimezone, Month, NaiveDatetime
from ledger.plans import EmailPlan, Tier
from ledger.pricing import total

JAN = Month(2026, 1)
FEB = Month(2026, 2)
DAY = timedelta(days=1)

#: no included emails, every email 0.0020, fee 5.00
FLAT = EmailPlan(
    id="flat",
    name="Flat",
    currency="EUR",
    monthly_fee=Decimal("5.00"),
    tiers=(Tier(unit_price=Decimal("0.0020")),),
)


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def open_account(
    *,
    plan: EmailPlan = STARTER,
    mode: PaymentMode = "postpaid",
    tz: str = "UTC",
    tax_rate: str = "0",
    opened_at: datetime | None = None,
) -> Account:
    return Account.open(
        account_id="acc-1",
        plan=plan,
        payment_mode=mode,
        currency=plan.currency,
        timezone=tz,
        tax_rate=Decimal(tax_rate),
        opened_at=opened_at or utc(2026, 1, 5, 9),
    )


def event_names(account: Account) -> list[str]:
    return [type(event).__name__ for event in account.collect_events()]


def amounts(doc: Document) -> list[tuple[str, int, Decimal]]:
    return [(line.kind, line.quantity, line.amount.amount) for line in doc.lines]


# ---------------------------------------------------------------- opening


def test_opening_a_prepaid_account_debits_the_fee_and_blocks_sending() -> None:
    account = open_account(mode="prepaid")
    assert event_names(account) == ["Opened", "MonthOpened", "SendingBlocked"]
    assert account.id == account_uuid("acc-1")
    assert account.debited == eur("10.00")
    assert account.balance == eur("-10.00")  # 0 credited - 10.00 fee
    assert account.blocked
    assert account.current == JAN
    account.check_invariants()


def test_opening_a_postpaid_account_debits_the_fee_and_never_blocks() -> None:
    account = open_account(mode="postpaid")
    assert event_names(account) == ["Opened", "MonthOpened"]
    assert account.balance == eur("-10.00")
    assert not account.blocked


def test_opening_month_is_the_local_month_of_the_opening_instant() -> None:
    # 31 Jan 23:30Z is 1 Feb 00:30 in Amsterdam (CET, UTC+1)
    account = open_account(tz="Europe/Amsterdam", opened_at=utc(2026, 1, 31, 23, 30))
    assert account.first_month == FEB
    assert account.current == FEB


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"plan": USD_STARTER}, PlanNotAllowed),  # USD plan, EUR account
        ({"currency": "XYZ"}, UnknownCurrency),
        ({"timezone": "Europe/Atlantis"}, InvalidTimezone),
        ({"timezone": "localtime"}, InvalidTimezone),  # the host's clock setting
        ({"timezone": "posix/Europe/Paris"}, InvalidTimezone),
        ({"opened_at": datetime(2026, 1, 5, 9)}, NaiveDatetime),
        ({"tax_rate": Decimal(1)}, InvalidAmount),
        ({"tax_rate": Decimal("-0.01")}, InvalidAmount),
    ],
)
def test_opening_with_invalid_terms_is_refused(
    changes: dict[str, Any], error: type[LedgerError]
) -> None:
    kwargs: dict[str, Any] = {
        "account_id": "acc-1",
        "plan": STARTER,
        "payment_mode": "prepaid",
        "currency": "EUR",
        "timezone": "UTC",
        "tax_rate": Decimal("0.21"),
        "opened_at": utc(2026, 1, 5),
    }
    kwargs.update(changes)
    with pytest.raises(error):
        Account.open(**kwargs)


# ---------------------------------------------------------------- credit and sending


def test_credit_purchase_unblocks_a_prepaid_account() -> None:
    account = open_account(mode="prepaid")
    account.collect_events()
    account.purchase_credit(eur("50.00"), "stripe-1", utc(2026, 1, 6))
    assert event_names(account) == ["CreditPurchased", "SendingUnblocked"]
    assert account.credited == eur("50.00")
    assert account.balance == eur("40.00")  # 50.00 - 10.00 fee
    assert not account.blocked


@pytest.mark.parametrize("amount", ["0.001", "49.999", "1.500"])
def test_a_credit_finer_than_the_currency_minor_unit_is_refused_and_changes_nothing(
    amount: str,
) -> None:
    account = open_account(mode="prepaid")
    account.collect_events()
    with pytest.raises(SubMinorUnit) as refused:
        account.purchase_credit(eur(amount), "stripe-1", utc(2026, 1, 6))
    assert str(refused.value) == (f"amount {amount} EUR has more than the 2 decimal places of EUR")
    assert event_names(account) == []
    assert account.credited == eur("0")
    assert account.balance == eur("-10.00")
    assert account.blocked


def test_credit_that_does_not_cover_the_fee_keeps_the_account_blocked() -> None:
    account = open_account(mode="prepaid")
    account.collect_events()
    account.purchase_credit(eur("5.00"), "stripe-1", utc(2026, 1, 6))
    assert event_names(account) == ["CreditPurchased"]
    assert account.balance == eur("-5.00")  # 5.00 - 10.00
    assert account.blocked


def test_prepaid_account_is_blocked_exactly_when_balance_cannot_cover_the_next_email() -> None:
    account = open_account(mode="prepaid")
    account.purchase_credit(eur("10.00"), "c1", utc(2026, 1, 6))
    # balance 0.00 covers the next email: it is the 1st, an included (free) one
    assert account.balance == eur("0")
    assert not account.blocked
    account.collect_events()
    account.record_emails(platform_emails(1000, utc(2026, 1, 7)))
    # 1000 included emails cost nothing; the 1001st costs 0.0010 > balance 0
    assert account.balance == eur("0")
    assert event_names(account) == ["EmailsRecorded", "SendingBlocked"]
    account.purchase_credit(eur("0.01"), "c2", utc(2026, 1, 8))
    # balance 0.01 >= 0.0010: covered again
    assert event_names(account) == ["CreditPurchased", "SendingUnblocked"]
    account.record_emails(platform_emails(9, utc(2026, 1, 9)))
    # 0.01 - 9 x 0.0010 = 0.001, still >= 0.0010: not blocked
    assert account.balance == eur("0.001")
    assert event_names(account) == ["EmailsRecorded"]
    account.record_emails(platform_emails(1, utc(2026, 1, 9)))
    # 0.001 - 0.0010 = 0
    assert account.balance == eur("0")
    assert event_names(account) == ["EmailsRecorded", "SendingBlocked"]


def test_postpaid_account_is_never_blocked_however_negative() -> None:
    account = open_account(mode="postpaid")
    account.record_emails(platform_emails(100010, utc(2026, 1, 7)))
    # 9000 * 0.0010 + 90000 * 0.0008 + 10 * 0.0005 = 9 + 72 + 0.005 = 81.0050, + 10.00 fee
    assert account.balance == eur("-91.0050")
    assert not account.blocked
    assert "SendingBlocked" not in event_names(account)


# ---------------------------------------------------------------- usage


def test_record_emails_makes_exactly_one_event_per_call_whatever_the_batch() -> None:
    account = open_account()
    account.collect_events()
    batch = (
        platform_emails(12000, utc(2026, 1, 10))
        + smtp_emails(3000, utc(2026, 1, 11))
        + platform_emails(500, utc(2026, 2, 2))  # a second month in the same batch
    )
    version = account.record_emails(batch)
    events = account.collect_events()
    assert [type(e).__name__ for e in events] == ["EmailsRecorded"]
    assert version == events[0].originator_version == account.version
    assert account.volume(JAN) == 12000
    assert account.volume(FEB) == 500


def test_record_emails_of_one_email_is_also_one_event() -> None:
    account = open_account()
    account.collect_events()
    account.record_emails(platform_emails(1, utc(2026, 1, 10)))
    assert event_names(account) == ["EmailsRecorded"]


def test_recording_no_emails_makes_no_event() -> None:
    account = open_account()
    account.collect_events()
    assert account.record_emails([]) == account.version
    assert event_names(account) == []


def test_usage_is_debited_when_recorded() -> None:
    account = open_account()
    account.record_emails(platform_emails(12345, utc(2026, 1, 10)))
    # 9000 * 0.0010 + 2345 * 0.0008 = 9.0000 + 1.8760 = 10.8760, plus the 10.00 fee
    assert account.debited == eur("20.8760")
    account.check_invariants()


def test_custom_smtp_email_is_counted_but_never_charged() -> None:
    account = open_account()
    account.record_emails(
        smtp_emails(5000, utc(2026, 1, 10)) + platform_emails(1500, utc(2026, 1, 10))
    )
    # smtp emails take no platform position: 1500 platform -> 500 paid * 0.0010 = 0.50
    assert account.debited == eur("10.50")
    assert account.months[str(JAN)].custom_smtp == 5000
    assert account.volume(JAN) == 1500
    [doc] = account.close_periods(utc(2026, 2, 2), DAY, numbers())
    assert amounts(doc) == [
        ("fee", 1, Decimal("10.00")),
        ("included", 1000, Decimal("0")),
        ("usage", 500, Decimal("0.50")),
        ("custom_smtp", 5000, Decimal("0")),
    ]


def test_custom_smtp_emails_alone_cost_nothing() -> None:
    account = open_account(mode="prepaid")
    account.purchase_credit(eur("10.00"), "c1", utc(2026, 1, 6))
    account.record_emails(smtp_emails(20000, utc(2026, 1, 7)))
    assert account.balance == eur("0")
    assert not account.blocked


def test_emails_sent_before_opening_count_in_the_opening_month() -> None:
    account = open_account(opened_at=utc(2026, 2, 10))
    account.record_emails(platform_emails(30, utc(2026, 1, 25)))
    assert account.volume(FEB) == 30
    assert account.closed_months == {}
    assert account.pending_late == ()


def test_month_boundary_follows_the_account_time_zone() -> None:
    account = open_account(tz="Europe/Amsterdam")
    # 31 Jan 22:59:59.999Z = 23:59:59.999 CET (January); 23:00Z = 1 Feb 00:00 CET
    last_ms_of_jan = datetime.fromisoformat("2026-01-31T22:59:59.999+00:00")
    account.record_emails(
        platform_emails(3, last_ms_of_jan)
        + platform_emails(4, last_ms_of_jan + timedelta(milliseconds=1))
    )
    assert account.volume(JAN) == 3
    assert account.volume(FEB) == 4


def test_emails_of_the_next_month_before_its_opening_keep_their_usage_and_get_one_fee() -> None:
    account = open_account()
    account.record_emails(platform_emails(1500, utc(2026, 2, 3)))
    assert account.months[str(FEB)].fee is None
    assert account.debited == eur("10.50")  # Jan fee 10.00 + 500 * 0.0010
    [jan] = account.close_periods(utc(2026, 2, 5), DAY, numbers())
    assert amounts(jan) == [("fee", 1, Decimal("10.00"))]
    # Feb opened with its fee and the usage recorded before
    assert account.months[str(FEB)].fee == eur("10.00")
    assert account.volume(FEB) == 1500
    assert account.debited == eur("20.50")  # 10.00 + 0.50 + 10.00
    [feb] = account.close_periods(utc(2026, 3, 5), DAY, numbers())
    assert amounts(feb) == [
        ("fee", 1, Decimal("10.00")),
        ("included", 1000, Decimal("0")),
        ("usage", 500, Decimal("0.50")),
    ]


# ---------------------------------------------------------------- late usage


def test_emails_in_a_documented_month_are_late_usage_on_the_next_document() -> None:
    account = open_account(tax_rate="0.21")
    next_number = numbers()
    account.record_emails(platform_emails(1000, utc(2026, 1, 10)))
    [jan] = account.close_periods(utc(2026, 2, 2), DAY, next_number)
    # Jan: fee 10.00 + 1000 included; tax 10.00 * 0.21 = 2.10; total 12.10
    assert jan.total == eur("12.10")
    assert account.debited == eur("22.10")  # 10.00 + 2.10 adjustment + Feb fee 10.00

    account.collect_events()
    account.record_emails(platform_emails(2500, utc(2026, 1, 20)))
    assert event_names(account) == ["EmailsRecorded"]
    # the late emails continue January's positions: 1001..3500 -> 2500 * 0.0010 = 2.5000,
    # debited at once
    assert account.debited == eur("24.6000")
    assert account.closed_months[str(JAN)].volume == 3500
    assert account.volume(FEB) == 0
    assert [(str(item.month), item.count, item.amount) for item in account.pending_late] == [
        ("2026-01", 2500, Decimal("2.5000"))
    ]

    account.record_emails(platform_emails(100, utc(2026, 2, 10)))
    [feb] = account.close_periods(utc(2026, 3, 2), DAY, next_number)
    assert feb.number == "2026-000002"
    assert amounts(feb) == [
        ("fee", 1, Decimal("10.00")),
        ("included", 100, Decimal("0")),
        ("late_usage", 2500, Decimal("2.50")),
    ]
    assert feb.subtotal == eur("12.50")  # 10.00 + 2.50
    assert feb.tax == eur("2.63")  # 12.50 * 0.21 = 2.625 -> 2.63 half-up
    assert feb.total == eur("15.13")
    assert account.pending_late == ()
    # 24.60 + (15.13 - 12.50) adjustment + Mar fee 10.00 = 37.23
    assert account.debited == eur("37.23")
    assert jan.total == eur("12.10")  # the issued document is never re-priced
    account.check_invariants()


def test_late_usage_is_billed_only_once() -> None:
    account = open_account()
    next_number = numbers()
    account.close_periods(utc(2026, 2, 2), DAY, next_number)
    account.record_emails(platform_emails(1100, utc(2026, 1, 20)))  # 100 paid: 0.1000
    [feb] = account.close_periods(utc(2026, 3, 2), DAY, next_number)
    [mar] = account.close_periods(utc(2026, 4, 2), DAY, next_number)
    assert [line.kind for line in feb.lines] == ["fee", "late_usage"]
    assert [line.kind for line in mar.lines] == ["fee"]


# ---------------------------------------------------------------- closing periods


def test_close_periods_documents_each_ended_month_and_opens_the_next() -> None:
    account = open_account(tz="Europe/Amsterdam", opened_at=utc(2026, 1, 5, 9))
    account.collect_events()
    docs = account.close_periods(utc(2026, 4, 10), timedelta(days=2), numbers())
    # Jan, Feb, Mar ended (Mar: 1 Apr 00:00 CEST = 31 Mar 22:00Z, + 2 days <= 10 Apr); Apr not
    assert [(d.number, str(d.period), d.total.amount) for d in docs] == [
        ("2026-000001", "2026-01", Decimal("10.00")),
        ("2026-000002", "2026-02", Decimal("10.00")),
        ("2026-000003", "2026-03", Decimal("10.00")),
    ]
    assert event_names(account) == ["DocumentIssued", "MonthOpened"] * 3
    assert account.current == Month(2026, 4)
    assert account.documents == ["2026-000001", "2026-000002", "2026-000003"]
    assert list(account.months) == ["2026-04"]
    assert sorted(account.closed_months) == ["2026-01", "2026-02", "2026-03"]
    # four fees of 10.00 (Jan..Apr); the documents add nothing on top (tax 0)
    assert account.balance == eur("-40.00")
    account.check_invariants()


def test_month_is_not_closed_before_its_end_plus_grace() -> None:
    tz = "Europe/Amsterdam"
    grace = timedelta(hours=6)
    closable = JAN.ends_at(tz) + grace  # 31 Jan 23:00Z + 6 h
    account = open_account(tz=tz)
    assert account.close_periods(closable - timedelta(microseconds=1), grace, numbers()) == []
    assert account.current == JAN
    [doc] = account.close_periods(closable, grace, numbers())
    assert doc.period == JAN


def test_close_periods_twice_issues_nothing_new() -> None:
    account = open_account()
    next_number = numbers()
    assert len(account.close_periods(utc(2026, 2, 2), DAY, next_number)) == 1
    account.collect_events()
    assert account.close_periods(utc(2026, 2, 2), DAY, next_number) == []
    assert event_names(account) == []


def test_document_is_dated_and_numbered_in_the_account_time_zone() -> None:
    tz = "Europe/Amsterdam"
    account = open_account(tz=tz, opened_at=utc(2025, 12, 10, 10))
    years: list[int] = []

    def next_number(year: int) -> str:
        years.append(year)
        return f"{year}-000001"

    # 31 Dec 23:30Z is 1 Jan 00:30 in Amsterdam: December has ended there
    [doc] = account.close_periods(utc(2025, 12, 31, 23, 30), timedelta(0), next_number)
    assert doc.period == Month(2025, 12)
    assert doc.issued_on == date(2026, 1, 1)
    assert years == [2026]
    assert doc.kind == "invoice"
    assert doc.due_on == date(2026, 1, 15)  # + 14 days


def test_prepaid_volume_month_is_trued_up_at_close() -> None:
    account = open_account(plan=VOLUME, mode="prepaid", tax_rate="0.21")
    account.purchase_credit(eur("100.00"), "c1", utc(2026, 1, 6))
    assert account.balance == eur("75.00")  # 100.00 - 25.00 fee
    account.record_emails(platform_emails(15000, utc(2026, 1, 10)))
    # positions 1..15000: 10000 paid at tier 1: 10000 * 0.0009 = 9.0000
    assert account.balance == eur("66.0000")
    account.record_emails(platform_emails(10000, utc(2026, 1, 20)))
    # positions 15001..25000 at tier 2 (month at 25000): 10000 * 0.0006 = 6.0000
    assert account.balance == eur("60.0000")
    [doc] = account.close_periods(utc(2026, 2, 1, 12), timedelta(hours=6), numbers())
    assert doc.kind == "receipt"
    assert amounts(doc)[-1] == ("volume_true_up", 25000, Decimal("-3.00"))  # 12.00 - 15.00
    assert doc.total == eur("44.77")  # (25.00 + 12.00) * 1.21 = 37.00 + 7.77
    # 60.00 - (44.77 - 40.00) adjustment - 25.00 Feb fee = 30.23
    assert account.balance == eur("30.23")
    account.check_invariants()


# ---------------------------------------------------------------- plan changes


def test_plan_change_applies_to_later_usage_and_later_fees() -> None:
    account = open_account()
    account.record_emails(platform_emails(1500, utc(2026, 1, 10)))  # 500 * 0.0010 = 0.50
    account.collect_events()
    account.change_plan(FLAT, utc(2026, 1, 15))
    assert event_names(account) == ["PlanChanged"]
    account.record_emails(platform_emails(1000, utc(2026, 1, 20)))  # 1000 * 0.0020 = 2.00
    [jan] = account.close_periods(utc(2026, 2, 2), DAY, numbers())
    assert amounts(jan) == [
        ("fee", 1, Decimal("10.00")),  # January's fee was STARTER's
        ("included", 1000, Decimal("0")),
        ("usage", 500, Decimal("0.50")),
        ("usage", 1000, Decimal("2.00")),
    ]
    assert account.months[str(FEB)].fee == eur("5.00")  # February's is FLAT's


def test_changing_to_the_same_plan_records_nothing() -> None:
    account = open_account()
    account.collect_events()
    account.change_plan(STARTER, utc(2026, 1, 15))
    assert event_names(account) == []


# ---------------------------------------------------------------- closing the account


def test_closed_account_gets_no_fee_after_its_closing_month() -> None:
    account = open_account()
    account.close(utc(2026, 1, 20))
    account.collect_events()
    [jan] = account.close_periods(utc(2026, 2, 2), DAY, numbers())
    assert jan.period == JAN
    assert event_names(account) == ["DocumentIssued"]  # no MonthOpened for February
    assert account.debited == eur("10.00")
    assert account.close_periods(utc(2026, 6, 2), DAY, numbers()) == []


def test_usage_after_closing_is_still_billed_without_a_fee() -> None:
    account = open_account()
    account.close(utc(2026, 1, 20))
    next_number = numbers()
    account.close_periods(utc(2026, 2, 2), DAY, next_number)
    account.record_emails(platform_emails(1500, utc(2026, 2, 3)))  # 500 * 0.0010 = 0.50
    docs = account.close_periods(utc(2026, 6, 2), DAY, next_number)
    assert [str(d.period) for d in docs] == ["2026-02"]
    assert amounts(docs[0]) == [("included", 1000, Decimal("0")), ("usage", 500, Decimal("0.50"))]


def test_closed_account_late_usage_is_billed_on_one_document_only() -> None:
    account = open_account()
    account.close(utc(2026, 1, 20))
    next_number = numbers()
    account.close_periods(utc(2026, 2, 2), DAY, next_number)
    account.record_emails(platform_emails(100, utc(2026, 1, 25)))  # late usage of January
    docs = account.close_periods(utc(2026, 6, 2), DAY, next_number)
    # only February has something to bill (January's late usage); March..May have nothing
    assert [str(d.period) for d in docs] == ["2026-02"]


# ---------------------------------------------------------------- rejected commands


def snapshot(account: Account) -> tuple[dict[str, Any], tuple[object, ...]]:
    state = {k: v for k, v in vars(account).items() if k != "_pending_events"}
    return copy.deepcopy(state), tuple(account.pending_events)


def busy_account() -> Account:
    account = open_account(mode="prepaid")
    account.purchase_credit(eur("20.00"), "c1", utc(2026, 1, 6))
    account.record_emails(platform_emails(1500, utc(2026, 1, 7)))
    return account


NAIVE = datetime(2026, 1, 8, 12)

Command = Callable[[Account], object]

REJECTED: list[tuple[str, Command, type[LedgerError]]] = [
    (
        "negative credit",
        lambda a: a.purchase_credit(eur("-5.00"), "r", utc(2026, 1, 8)),
        InvalidAmount,
    ),
    ("zero credit", lambda a: a.purchase_credit(eur("0"), "r", utc(2026, 1, 8)), InvalidAmount),
    (
        "credit in another currency",
        lambda a: a.purchase_credit(Money.of("5", "USD"), "r", utc(2026, 1, 8)),
        InvalidAmount,
    ),
    ("credit at a naive time", lambda a: a.purchase_credit(eur("5"), "r", NAIVE), NaiveDatetime),
    (
        "plan of another currency",
        lambda a: a.change_plan(USD_STARTER, utc(2026, 1, 8)),
        PlanNotAllowed,
    ),
    ("plan change at a naive time", lambda a: a.change_plan(FLAT, NAIVE), NaiveDatetime),
    (
        "batch with a naive send time",
        lambda a: a.record_emails(
            [SentEmail(utc(2026, 1, 8), "platform"), SentEmail(NAIVE, "platform")]
        ),
        NaiveDatetime,
    ),
    (
        "close periods at a naive time",
        lambda a: a.close_periods(NAIVE, DAY, numbers()),
        NaiveDatetime,
    ),
    ("close at a naive time", lambda a: a.close(NAIVE), NaiveDatetime),
]


@pytest.mark.parametrize(
    ("command", "error"), [(c, e) for _, c, e in REJECTED], ids=[name for name, _, _ in REJECTED]
)
def test_rejected_command_leaves_state_and_pending_events_unchanged(
    command: Command, error: type[LedgerError]
) -> None:
    account = busy_account()
    before = snapshot(account)
    with pytest.raises(error):
        command(account)
    assert snapshot(account) == before


AFTER_CLOSE: list[tuple[str, Command]] = [
    ("purchase credit", lambda a: a.purchase_credit(eur("5.00"), "r", utc(2026, 1, 21))),
    ("change plan", lambda a: a.change_plan(FLAT, utc(2026, 1, 21))),
    ("close again", lambda a: a.close(utc(2026, 1, 21))),
]


@pytest.mark.parametrize(
    "command", [c for _, c in AFTER_CLOSE], ids=[name for name, _ in AFTER_CLOSE]
)
def test_command_after_close_is_refused_and_changes_nothing(command: Command) -> None:
    account = busy_account()
    account.close(utc(2026, 1, 20))
    before = snapshot(account)
    with pytest.raises(AccountClosed):
        command(account)
    assert snapshot(account) == before


# ---------------------------------------------------------------- properties

operations = st.lists(
    st.one_of(
        st.tuples(st.just("credit"), st.integers(1, 5000)),
        st.tuples(st.just("emails"), st.integers(0, 1500), st.integers(0, 20), st.integers(-40, 0)),
        st.tuples(st.just("close"), st.integers(0, 3)),
    ),
    max_size=15,
)


def check_accounting(account: Account, documents: list[Document], credited: Decimal) -> None:
    account.check_invariants()
    assert account.balance == account.credited - account.debited
    assert account.credited.amount == credited
    for doc in documents:
        doc.check_invariants()
    # every debit is either in a document's total, or what the open months and the
    # pending late usage accrued so far (fee + exact charges)
    open_accrued = sum(
        ((u.fee.amount if u.fee else Decimal(0)) + u.charged for u in account.months.values()),
        Decimal(0),
    )
    pending = sum((total(item.charges) for item in account.pending_late), Decimal(0))
    documented = sum((d.total.amount for d in documents), Decimal(0))
    assert account.debited.amount == documented + open_accrued + pending


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([STARTER, VOLUME, FLAT]),
    st.sampled_from(["prepaid", "postpaid"]),
    st.sampled_from(["UTC", "Europe/Amsterdam"]),
    st.sampled_from(["0", "0.21"]),
    operations,
)
def test_balance_is_credits_minus_documents_and_what_open_months_accrued(
    plan: EmailPlan, mode: PaymentMode, tz: str, tax_rate: str, ops: list[tuple[Any, ...]]
) -> None:
    now = utc(2026, 1, 3)
    account = open_account(plan=plan, mode=mode, tz=tz, tax_rate=tax_rate, opened_at=now)
    next_number = numbers()
    documents: list[Document] = []
    credited = Decimal(0)
    for op in ops:
        now += timedelta(days=9)
        if op[0] == "credit":
            cents = Decimal(op[1]) / 100
            account.purchase_credit(eur(str(cents)), "c", now)
            credited += cents
        elif op[0] == "emails":
            _, platform, smtp, days_back = op
            sent_at = now + timedelta(days=days_back)  # may fall in a documented month
            batch = platform_emails(platform, sent_at) + smtp_emails(smtp, sent_at)
            account.collect_events()
            account.record_emails(batch)
            recorded = [type(e).__name__ for e in account.collect_events()]
            assert recorded.count("EmailsRecorded") == (1 if batch else 0)
        else:
            documents += account.close_periods(now, timedelta(days=op[1]), next_number)
        check_accounting(account, documents, credited)
    # close everything that has ended by two months later
    documents += account.close_periods(now + timedelta(days=62), timedelta(0), next_number)
    check_accounting(account, documents, credited)
    assert account.pending_late == ()
    assert [d.number for d in documents] == account.documents
    assert len(set(account.documents)) == len(account.documents)
    # one document per month, consecutive, from the opening month on
    periods = [d.period for d in documents]
    assert periods[0] == JAN
    assert all(b == a.next() for a, b in itertools.pairwise(periods))
