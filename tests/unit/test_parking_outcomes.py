"""Which refusals park a fact and which dead-letter it (in-memory Ledger: pure decisions)."""

from __future__ import annotations

from decimal import Decimal

from commands.handlers import BatchWork, Parking, Rejection, apply_commands
from commands.models import (
    ContactChangeItem,
    OpenAccount,
    Origin,
    PurchaseCredit,
    RecordContactChanges,
    RecordEmailsSent,
    SentEmailItem,
)
from ledger.application import Ledger
from ledger.contacts.billable import ContactState
from ledger.entrypoints.settings import PROJECT_ROOT
from ledger.plans import Catalogue
from tests.support import utc


def _work() -> BatchWork:
    return BatchWork(Ledger(), Catalogue.load(PROJECT_ROOT / "plans"))


def _origin(offset: int) -> Origin:
    return Origin("urn:test", f"id-{offset}", "topic", 0, offset, f"<{offset}@test>")


def test_facts_for_an_account_not_open_yet_are_parked_with_their_event_times() -> None:
    work = _work()
    emails = RecordEmailsSent(
        account_id="ghost",
        emails=(
            SentEmailItem(utc(2026, 11, 2, 9), "platform", _origin(0)),
            SentEmailItem(utc(2026, 11, 2, 10), "custom_smtp", _origin(1)),
        ),
    )
    credit = PurchaseCredit(
        account_id="ghost",
        amount=Decimal("5.00"),
        reference="r",
        at=utc(2026, 11, 3),
        origin=_origin(2),
    )
    contact = RecordContactChanges(
        account_id="ghost",
        changes=(ContactChangeItem(ContactState.tombstone("c", 2), utc(2026, 11, 4), _origin(3)),),
    )
    apply_commands([emails, credit, contact], work)
    assert work.rejections == []
    assert work.parkings == [
        Parking(
            "ghost",
            (_origin(0), _origin(1)),
            (utc(2026, 11, 2, 9), utc(2026, 11, 2, 10)),
            "unknown account 'ghost'",
        ),
        Parking("ghost", (_origin(2),), (utc(2026, 11, 3),), "unknown account 'ghost'"),
        Parking("ghost", (_origin(3),), (utc(2026, 11, 4),), "unknown account 'ghost'"),
    ]
    assert (work.accounts, work.dedupe, work.applied_messages) == ({}, [], 0)


def test_an_opening_refused_for_its_plan_is_dead_lettered_not_parked() -> None:
    work = _work()
    opening = OpenAccount(
        account_id="newco",
        plan="email-galaxy",
        payment_mode="postpaid",
        currency="EUR",
        at=utc(2026, 11, 1),
        origin=_origin(0),
    )
    apply_commands([opening], work)
    assert work.parkings == []
    assert work.rejections == [Rejection((_origin(0),), "unknown plan 'email-galaxy'")]
    assert work.accounts == {} and work.opened == []
