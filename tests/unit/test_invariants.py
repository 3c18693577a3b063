"""A broken invariant is ours, not the input's: it stops the consumer instead of being
dead-lettered as a refusal (STYLE.md point 13)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, cast

import pytest
from contacts_builders import ACCOUNT, ORIGIN, change, open_account
from unit_builders import STARTER, platform_emails, utc

from commands.handlers import BatchWork, PoisonCommand, apply_commands
from commands.models import RecordContactChanges
from ledger.contacts.billable import ContactState, NegativeBillableCount
from ledger.documents import DocumentInvariantBroken
from ledger.emails.account import Account
from ledger.errors import InvalidAmount, InvariantBroken, LedgerError
from ledger.money import Money
from ledger.plans import Catalogue


def _work(account: Any, stored: dict[tuple[str, str], tuple[int, bool]]) -> BatchWork:
    # Nothing is loaded or saved: a store without the ledger's tables holds no contact.
    work = BatchWork(cast(Any, SimpleNamespace(recorder=None)), cast(Catalogue, None))
    work.accounts[account.account_id] = account
    for (account_id, contact_id), held in stored.items():
        work.known_contacts.setdefault(account_id, {})[contact_id] = held
    return work


def test_a_count_driven_negative_stops_the_batch_instead_of_dead_lettering_it() -> None:
    account = open_account()
    t = utc(2027, 1, 16)
    # the stored copy says c1 is billable, the account's running count (0) never had it
    command = RecordContactChanges(
        account_id=ACCOUNT, changes=(change(ContactState.tombstone("c1", 2), t),)
    )
    work = _work(account, {(ACCOUNT, "c1"): (1, True)})
    with pytest.raises(NegativeBillableCount):
        apply_commands([command], work)
    assert work.rejections == []
    assert work.contacts == []


def test_a_refusal_in_the_same_handlers_is_still_a_rejection() -> None:
    account = _account()  # billed by emails: contact changes are refused
    command = RecordContactChanges(
        account_id="a", changes=(change(ContactState("c1", 1, email="a@x"), utc(2026, 1, 7)),)
    )
    work = _work(account, {})
    apply_commands([command], work)
    [rejection] = work.rejections
    assert rejection.origins == (ORIGIN,)
    assert "billed by emails" in rejection.reason


def test_invariant_breaks_are_not_refusals_nor_poison() -> None:
    for error in (InvariantBroken, NegativeBillableCount, DocumentInvariantBroken):
        assert not issubclass(error, LedgerError)
        assert not issubclass(error, PoisonCommand)


def _account() -> Account:
    return Account.open(
        account_id="a",
        plan=STARTER,
        payment_mode="prepaid",
        currency="EUR",
        timezone="UTC",
        tax_rate=Decimal("0.21"),
        opened_at=utc(2026, 1, 5),
    )


def test_an_account_with_consistent_usage_keeps_its_invariants() -> None:
    account = _account()
    account.purchase_credit(Money.of("5.00", "EUR"), "r-1", utc(2026, 1, 6))
    account.record_emails(platform_emails(1500, utc(2026, 1, 7)))
    account.check_invariants()


def test_segments_that_do_not_add_up_to_the_months_emails_break_the_invariant() -> None:
    account = _account()
    account.record_emails(platform_emails(1500, utc(2026, 1, 7)))
    [key] = account.months
    usage = account.months[key]
    account.months[key] = dataclasses.replace(usage, platform=usage.platform + 1)
    with pytest.raises(InvariantBroken, match="1501 platform emails"):
        account.check_invariants()


def test_a_negative_credit_breaks_the_invariant() -> None:
    account = _account()
    account.credited = Money.of("-0.01", "EUR")
    with pytest.raises(InvariantBroken, match="negative credit"):
        account.check_invariants()


def test_a_month_both_open_and_documented_breaks_the_invariant() -> None:
    account = _account()
    [key] = account.months
    account.closed_months[key] = cast(Any, None)
    with pytest.raises(InvariantBroken, match="open and documented"):
        account.check_invariants()


def test_a_contacts_month_billed_beyond_its_overage_breaks_the_invariant() -> None:
    account = open_account()
    account.record_emails(platform_emails(3, utc(2027, 1, 20)))
    month = account.months["0"]
    account.months["0"] = dataclasses.replace(month, billed=month.overage + 1)
    with pytest.raises(InvariantBroken, match="billed 4 emails of 3"):
        account.check_invariants()


@pytest.mark.parametrize("rate", ["1", "-0.01"])
def test_both_billing_models_refuse_a_tax_rate_out_of_range_with_one_error(rate: str) -> None:
    with pytest.raises(InvalidAmount, match=r"tax rate must be in \[0, 1\)"):
        open_account(tax_rate=rate)
    with pytest.raises(InvalidAmount, match=r"tax rate must be in \[0, 1\)"):
        Account.open(
            account_id="a",
            plan=STARTER,
            payment_mode="prepaid",
            currency="EUR",
            timezone="UTC",
            tax_rate=Decimal(rate),
            opened_at=utc(2026, 1, 5),
        )
