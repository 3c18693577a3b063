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
    SentEmail,
    numbers,
    platform_emails,
    smtp_emails,
    utc,
)

from ledger.documents import Document, PaymentMode
from ledger.emails.account import Account
from ledger.emails.pricing import total
from ledger.errors import AccountClosed, InvalidAmount, LedgerError, PlanNotAllowed
from ledger.money import Money, SubMinorUnit, UnknownCurrency
from ledger.opening import account_uuid
from ledger.periods import InvalidTimezone, Month, NaiveDatetime
from ledger.plans import EmailPlan, Tier

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


def test_sending_status_after_emails_out_of_order_does_not_depend_on_the_batches() -> None:
    def prepaid() -> Account:
        account = open_account(mode="prepaid", opened_at=utc(2026, 11, 1))
        account.purchase_credit(eur("10.00"), "c1", utc(2026, 11, 1))  # 10.00 fee: 0.00 left
        account.record_emails(platform_emails(999, utc(2026, 11, 20)))  # all included
        return account

    december = SentEmail(utc(2026, 12, 1, 1), "platform")
    november = SentEmail(utc(2026, 11, 30, 23), "platform")  # reported after December's
    one_by_one, together = prepaid(), prepaid()
    one_by_one.record_emails([december])
    one_by_one.record_emails([november])
    together.record_emails([december, november])
    # November is at 1,000 (its next email costs 0.0010 > 0.00), but the account is
    # sending in December, whose 2nd email is included (0.00): it may send, either way
    for account in (one_by_one, together):
        assert account.balance == eur("0")
        assert (account.volume(Month(2026, 11)), account.volume(Month(2026, 12))) == (1000, 1)
        assert not account.blocked


def test_postpaid_account_is_never_blocked_however_negative() -> None:
    account = open_account(mode="postpaid")
    account.record_emails(platform_emails(100010, utc(2026, 1, 7)))
    # 9000 * 0.0010 + 90000 * 0.0008 + 10 * 0.0005 = 9 + 72 + 0.005 = 81.0050, + 10.00 fee
    assert account.balance == eur("-91.0050")
    assert not account.blocked
    assert "SendingBlocked" not in event_names(account)


# ---------------------------------------------------------------- usage


def test_record_emails_of_one_month_is_one_event_whatever_the_batch_size() -> None:
    account = open_account()
    account.collect_events()
    batch = platform_emails(12000, utc(2026, 1, 10)) + smtp_emails(3000, utc(2026, 1, 11))
    recorded = account.record_emails(batch)
    events = account.collect_events()
    assert [type(e).__name__ for e in events] == ["EmailsRecorded"]
    # the one event billed every email of the batch
    assert recorded == [(account.version, batch)]
    assert events[0].originator_version == account.version
    assert events[0].effective_at == utc(2026, 1, 11)  # the latest send time
    assert account.volume(JAN) == 12000


def test_a_batch_across_midnight_of_the_1st_is_one_event_per_month() -> None:
    account = open_account(tz="Europe/Amsterdam")
    account.collect_events()
    # 31 Jan 23:59:59 and 1 Feb 00:00:01 in Amsterdam (UTC+1), February's arriving first
    last_of_jan = SentEmail(datetime.fromisoformat("2026-01-31T22:59:59+00:00"), "platform")
    first_of_feb = SentEmail(datetime.fromisoformat("2026-01-31T23:00:01+00:00"), "platform")
    recorded = account.record_emails([first_of_feb, last_of_jan, first_of_feb])
    events = account.collect_events()
    assert [type(e).__name__ for e in events] == ["EmailsRecorded", "EmailsRecorded"]
    jan, feb = events
    # each event covers one month, dated by its own latest email
    assert [e.month for e in jan.entries] == [JAN]
    assert jan.effective_at == last_of_jan.sent_at
    assert [e.month for e in feb.entries] == [FEB]
    assert feb.effective_at == first_of_feb.sent_at
    # each email is returned with the event that billed it (what its dedupe key points at)
    assert recorded == [
        (jan.originator_version, [last_of_jan]),
        (feb.originator_version, [first_of_feb, first_of_feb]),
    ]
    assert (account.volume(JAN), account.volume(FEB)) == (1, 2)
    # the state as of the January event holds January's email and none of February's
    assert account.months[str(JAN)].platform == 1


def test_a_prepaid_batch_across_two_months_debits_each_and_blocks_by_the_later_month() -> None:
    account = open_account(plan=VOLUME, mode="prepaid")
    # 38.51 - 25.00 fee = 13.51: what the batch below costs, plus 0.0007
    account.purchase_credit(eur("38.51"), "c1", utc(2026, 1, 6))
    account.collect_events()
    # January: positions 1..20014 -> 5000 included, 15000 at tier 1 (0.0009) = 13.5000,
    # 14 at tier 2 (0.0006) = 0.0084; February (not opened yet, no fee): 5001 emails,
    # the 5001st is the first paid, 0.0009
    account.record_emails(
        platform_emails(20014, utc(2026, 1, 31, 23)) + platform_emails(5001, utc(2026, 2, 1, 1))
    )
    # 13.51 - 13.5084 - 0.0009 = 0.0007: enough for January's next email (0.0006), not
    # for February's (its 5002nd, 0.0009); the latest email is February's, so: blocked
    assert account.balance == eur("0.0007")
    assert event_names(account) == ["EmailsRecorded", "EmailsRecorded", "SendingBlocked"]
    [jan] = account.close_periods(utc(2026, 2, 2), DAY, numbers())
    # January's 15014 paid emails at the final tier 2: 15014 * 0.0006 = 9.0084 -> 9.01;
    # as sent 13.51 (13.5000 -> 13.50 and 0.0084 -> 0.01), so the true-up is -4.50
    assert amounts(jan) == [
        ("fee", 1, Decimal("25.00")),
        ("included", 5000, Decimal("0")),
        ("usage", 15000, Decimal("13.50")),
        ("usage", 14, Decimal("0.01")),
        ("volume_true_up", 20014, Decimal("-4.50")),
    ]
    assert jan.total == eur("34.01")
    # February opened on top of its usage: one fee, the 5001 emails kept
    assert account.months[str(FEB)].fee == eur("25.00")
    assert account.volume(FEB) == 5001
    # 0.0007 - (34.01 - 38.5084) adjustment - 25.00 February fee = -20.5009
    assert account.balance == eur("-20.5009")
    assert account.blocked
    account.check_invariants()


def test_record_emails_of_one_email_is_also_one_event() -> None:
    account = open_account()
    account.collect_events()
    account.record_emails(platform_emails(1, utc(2026, 1, 10)))
    assert event_names(account) == ["EmailsRecorded"]


def test_recording_no_emails_makes_no_event() -> None:
    account = open_account()
    account.collect_events()
    assert account.record_emails([]) == []
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
    # positions 15001..25000 as sent: 5000 at tier 1 (0.0009) = 4.5000 and
    # 5000 at tier 2 (0.0006) = 3.0000
    assert account.balance == eur("58.5000")
    [doc] = account.close_periods(utc(2026, 2, 1, 12), timedelta(hours=6), numbers())
    assert doc.kind == "receipt"
    assert amounts(doc)[-1] == ("volume_true_up", 25000, Decimal("-4.50"))  # 12.00 - 16.50
    assert doc.total == eur("44.77")  # (25.00 + 12.00) * 1.21 = 37.00 + 7.77
    # 58.50 - (44.77 - 41.50) adjustment - 25.00 Feb fee = 30.23
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


def test_emails_around_a_plan_change_arriving_out_of_order_cost_the_same_in_one_batch() -> None:
    def changed() -> Account:
        account = open_account()
        account.change_plan(FLAT, utc(2026, 1, 15))
        return account

    after = platform_emails(1500, utc(2026, 1, 20))  # FLAT's terms
    before = platform_emails(1, utc(2026, 1, 10))  # STARTER's, reported after them
    one_by_one, together = changed(), changed()
    one_by_one.record_emails(after)
    one_by_one.record_emails(before)
    together.record_emails(after + before)
    # positions by arrival: FLAT 1..1500 at 0.0020 = 3.0000; STARTER's email is the
    # 1,501st, past its 1,000 included: 0.0010
    docs = [a.close_periods(utc(2026, 2, 2), DAY, numbers()) for a in (one_by_one, together)]
    assert docs[0] == docs[1]
    assert amounts(docs[0][0]) == [
        ("fee", 1, Decimal("10.00")),
        ("usage", 1500, Decimal("3.00")),
        ("usage", 1, Decimal("0.00")),  # 0.0010 -> 0.00
    ]
    # January's fee 10.00 + 3.0010 as sent - 0.0010 rounding at the close + FLAT's 5.00 for February
    assert one_by_one.debited == together.debited == eur("18.0000")


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


def test_usage_after_the_closing_month_is_billed_from_the_first_email_without_a_fee() -> None:
    account = open_account()
    account.close(utc(2026, 1, 20))
    next_number = numbers()
    account.close_periods(utc(2026, 2, 2), DAY, next_number)
    # February: no fee was charged, so no emails are included: positions 1..1500 all paid
    # at tier 1, 1500 * 0.0010 = 1.5000
    account.record_emails(platform_emails(1500, utc(2026, 2, 3)))
    assert account.debited == eur("11.50")  # January's fee 10.00 + 1.50
    docs = account.close_periods(utc(2026, 6, 2), DAY, next_number)
    assert [str(d.period) for d in docs] == ["2026-02"]
    assert amounts(docs[0]) == [("usage", 1500, Decimal("1.50"))]
    assert docs[0].lines[0].description == (
        "Emails, Email Starter, after closing (no emails included), tier 1 (1-10,000)"
    )
    assert docs[0].total == eur("1.50")


def test_emails_in_the_closing_month_after_the_close_keep_its_included_emails() -> None:
    account = open_account()
    account.close(utc(2026, 1, 20))
    # January's fee was paid: its 1000 included emails stand; 1200 - 1000 = 200 * 0.0010
    account.record_emails(platform_emails(1200, utc(2026, 1, 25)))
    [jan] = account.close_periods(utc(2026, 2, 2), DAY, numbers())
    assert amounts(jan) == [
        ("fee", 1, Decimal("10.00")),
        ("included", 1000, Decimal("0")),
        ("usage", 200, Decimal("0.20")),
    ]


def test_usage_months_after_closing_is_billed_on_its_own_month_skipping_empty_ones() -> None:
    account = open_account(plan=VOLUME, mode="prepaid")
    account.close(utc(2026, 1, 20))
    next_number = numbers()
    account.close_periods(utc(2026, 2, 2), DAY, next_number)
    # Nothing in February or March; 25000 emails in April, none included (no fee was
    # charged), charged as sent: positions 1..20000 at tier 1 (0.0009) = 18.0000,
    # 20001..25000 at tier 2 (0.0006) = 3.0000
    account.record_emails(platform_emails(25000, utc(2026, 4, 10)))
    assert account.debited == eur("46.0000")  # January's fee 25.00 + 21.0000
    account.collect_events()
    docs = account.close_periods(utc(2026, 6, 2), DAY, next_number)
    # February and March get no document; April's receipt trues April up to tier 2:
    # 25000 * 0.0006 = 15.00
    assert [type(e).__name__ for e in account.collect_events()] == [
        "MonthSkipped",
        "MonthSkipped",
        "DocumentIssued",
    ]
    assert [str(d.period) for d in docs] == ["2026-04"]
    assert amounts(docs[0]) == [
        ("usage", 20000, Decimal("18.00")),
        ("usage", 5000, Decimal("3.00")),
        ("volume_true_up", 25000, Decimal("-6.00")),  # 15.00 - 21.00
    ]
    assert docs[0].total == eur("15.00")
    assert account.debited == eur("40.00")  # 25.00 + 15.00
    # emails of the skipped March reported now are late usage, also with nothing
    # included: 10 * 0.0009 = 0.0090 -> 0.01, on the next document
    account.record_emails(platform_emails(10, utc(2026, 3, 15)))
    [may] = account.close_periods(utc(2026, 7, 2), DAY, next_number)
    assert str(may.period) == "2026-05"
    assert amounts(may) == [("late_usage", 10, Decimal("0.01"))]
    assert account.close_periods(utc(2026, 12, 2), DAY, next_number) == []
    account.check_invariants()


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
