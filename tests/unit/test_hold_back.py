"""Accounts first: usage partitions wait until the accounts partitions are read."""

from __future__ import annotations

from kafka import TopicPartition

from consumers.hold_back import AccountsFirst

ACCOUNTS = [TopicPartition("billing.accounts", 0), TopicPartition("billing.accounts", 1)]
EMAILS = [TopicPartition("billing.email-sent", 0)]


def held_back() -> AccountsFirst:
    first = AccountsFirst(frozenset({"billing.accounts"}))
    first.assigned([*ACCOUNTS, *EMAILS])
    return first


def test_usage_is_paused_until_every_accounts_partition_reached_its_checked_end() -> None:
    first = held_back()
    assert first.paused([*ACCOUNTS, *EMAILS]) == set(EMAILS)
    assert not first.release(lambda tp: 100)  # ends not known yet: nothing is released
    first.checked(ACCOUNTS[0], 10)
    first.checked(ACCOUNTS[1], 20)
    reached = {ACCOUNTS[0]: 10, ACCOUNTS[1]: 19}
    assert not first.release(reached.__getitem__)
    assert first.holding
    reached[ACCOUNTS[1]] = 20
    assert first.release(reached.__getitem__)
    assert not first.holding
    assert first.paused([*ACCOUNTS, *EMAILS]) == set()


def test_a_later_check_does_not_move_the_end_to_reach() -> None:
    first = held_back()
    first.checked(ACCOUNTS[0], 10)
    first.checked(ACCOUNTS[0], 50)
    first.checked(ACCOUNTS[1], 0)
    assert first.release({ACCOUNTS[0]: 10, ACCOUNTS[1]: 0}.__getitem__)


def test_a_held_or_revoked_accounts_partition_no_longer_holds_usage_back() -> None:
    first = held_back()
    first.held(ACCOUNTS[0])
    first.checked(ACCOUNTS[1], 5)
    assert first.release(lambda tp: None)  # not assigned any more


def test_an_assignment_without_usage_or_without_accounts_holds_nothing_back() -> None:
    first = AccountsFirst(frozenset({"billing.accounts"}))
    first.assigned(ACCOUNTS)
    assert not first.holding
    first.assigned(EMAILS)
    assert not first.holding
    assert first.paused(EMAILS) == set()
