"""The numbers the monthly usage read model stores: a pure function of the events."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from eventsourcing.persistence import StoredEvent
from unit_builders import STARTER, VOLUME, numbers, platform_emails, smtp_emails, utc

from ledger.application import Ledger
from ledger.emails.account import Account
from ledger.emails.pricing import Charge
from ledger.periods import Month
from projections.usage import LateFigures, OpenMonthFigures, usage_figures

JAN, FEB = Month(2026, 1), Month(2026, 2)
FIXTURES = Path(__file__).parent / "fixtures"


def account(plan: Any = STARTER, mode: Any = "postpaid") -> Account:
    return Account.open(
        account_id="old-1",
        plan=plan,
        payment_mode=mode,
        currency="EUR",
        timezone="UTC",
        tax_rate=Decimal(0),
        opened_at=utc(2026, 1, 5, 9),
    )


def figures_of(acc: Account) -> list[OpenMonthFigures | LateFigures]:
    return [f for event in acc.collect_events() for f in usage_figures(event)]


def test_an_open_volume_month_shows_the_month_priced_at_the_tier_its_volume_reached() -> None:
    acc = account(VOLUME, "prepaid")
    acc.record_emails(platform_emails(15000, utc(2026, 1, 10)))
    acc.record_emails(platform_emails(10000, utc(2026, 1, 20)) + smtp_emails(7, utc(2026, 1, 20)))
    *_, last = figures_of(acc)
    # 25000 emails, 5000 included; 20000 paid at the tier 25000 reaches (tier 2, 0.0006):
    # 12.0000, what the receipt will charge for them, although 16.5000 was debited as sent
    assert last == OpenMonthFigures(
        month=JAN,
        platform=25000,
        included=5000,
        charged=20000,
        custom_smtp=7,
        amount=Decimal("12.0000"),
        fee=Decimal("25.00"),
        tiers=(Charge("email-volume", 2, Decimal("0.0006"), 20000),),
    )
    assert acc.months[str(JAN)].charged == Decimal("16.5000")


def test_late_emails_are_added_to_their_months_row_priced_as_sent() -> None:
    acc = account()
    acc.record_emails(platform_emails(1000, utc(2026, 1, 10)))
    acc.close_periods(utc(2026, 2, 2), timedelta(days=1), numbers())
    acc.collect_events()
    acc.record_emails(platform_emails(30, utc(2026, 1, 25)) + smtp_emails(2, utc(2026, 1, 26)))
    # January's positions 1001..1030 at tier 1: 30 * 0.0010 = 0.0300
    assert figures_of(acc) == [
        LateFigures(
            JAN, 30, 2, Decimal("0.0300"), (Charge("email-starter", 1, Decimal("0.0010"), 30),)
        )
    ]


def test_an_event_stored_before_one_event_per_month_still_replays_and_projects() -> None:
    # Stored by the code before this change: one EmailsRecorded for January and February.
    fixture = json.loads((FIXTURES / "emails_recorded_two_months.json").read_text())
    ledger = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    acc = account()
    acc.collect_events()
    stored = StoredEvent(
        originator_id=acc.id,
        originator_version=fixture["originator_version"],
        topic=fixture["topic"],
        state=json.dumps(fixture["state"]).encode(),
    )
    event = ledger.mapper.to_domain_event(stored)
    event.mutate(acc)
    assert (acc.version, acc.volume(JAN), acc.volume(FEB)) == (3, 1200, 3)
    # 10.00 January fee + 200 * 0.0010
    assert acc.debited.amount == Decimal("10.2000")
    assert usage_figures(event) == [
        OpenMonthFigures(
            JAN,
            1200,
            1000,
            200,
            0,
            Decimal("0.2000"),
            Decimal("10.00"),
            (Charge("email-starter", 1, Decimal("0.0010"), 200),),
        ),
        OpenMonthFigures(FEB, 3, 3, 0, 0, Decimal(0), Decimal(0), ()),
    ]
