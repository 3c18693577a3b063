"""Contact changes and the billable listing as of an instant (seed 002).

Amounts are worked out by hand from the plans described in ``contacts_builders``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from contacts_builders import (
    FEB_15,
    GRACE,
    MICRO,
    OPENED,
    Counter,
    change,
    close,
    open_account,
    replayed,
    state,
)
from unit_builders import utc

from ledger.contacts.account import (
    ContactsAccount,
    contacts_as_of,
)
from ledger.contacts.billable import ContactState, NegativeBillableCount, billable_as_of

# ---------------------------------------------------------------- 7. contact changes


def test_stale_and_repeated_versions_are_ignored_and_known_versions_respected() -> None:
    account = open_account()
    t = utc(2027, 1, 15, 11)
    version, applied = account.record_contact_changes(
        [
            change(ContactState("c1", 2, email="a@example.com"), t),
            change(ContactState("c1", 1, phone="+31"), t),  # older than v2 in this batch
            change(ContactState("c1", 2, phone="+31"), t),  # same version: first one wins
            change(ContactState("c2", 1, email=" "), t),  # blank: not billable
            change(ContactState("c3", 5, web_push=True), t),
            change(ContactState("c4", 3, chat_replied=True), t),  # stored v3: a repeat
        ],
        {"c3": (4, False), "c4": (3, True)},
    )
    assert version == 2  # Opened is 1, the batch's one event is 2
    assert [(c.contact_id, c.version, c.reasons, c.deleted) for c in applied] == [
        ("c1", 2, ("email",), False),
        ("c2", 1, (), False),
        ("c3", 5, ("web_push",), False),
    ]
    # c1 and c3 became billable; c2 is not; c4 unchanged
    assert account.billable == 2
    events = account.collect_events()
    assert [type(e).__name__ for e in events] == ["Opened", "ContactsChanged"]


def test_a_batch_that_applies_nothing_records_nothing() -> None:
    account = open_account()
    account.collect_events()
    version, applied = account.record_contact_changes(
        [change(ContactState("c1", 2, email="a@x"), utc(2027, 1, 16))], {"c1": (2, True)}
    )
    assert (version, applied) == (1, ())
    assert account.collect_events() == []
    assert account.billable == 0


def test_a_tombstone_removes_a_contact_and_only_a_higher_version_brings_it_back() -> None:
    account = open_account()
    t = utc(2027, 1, 16)
    account.record_contact_changes(
        [
            change(ContactState("c1", 1, email="a@x"), t),
            change(ContactState("c2", 1, user_id="u"), t),
        ],
        {},
    )
    assert account.billable == 2
    _, applied = account.record_contact_changes(
        [change(ContactState.tombstone("c1", 2), t)], {"c1": (1, True)}
    )
    assert [(c.version, c.reasons, c.deleted) for c in applied] == [(2, (), True)]
    assert account.billable == 1
    # a stale change arriving after the delete does not revive it
    _, applied = account.record_contact_changes(
        [change(ContactState("c1", 1, email="a@x"), t)], {"c1": (2, False)}
    )
    assert applied == ()
    assert account.billable == 1
    # re-creation with a higher version counts again
    _, applied = account.record_contact_changes(
        [change(ContactState("c1", 3, phone="+31"), t)], {"c1": (2, False)}
    )
    assert [(c.version, c.reasons) for c in applied] == [(3, ("phone",))]
    assert account.billable == 2


def test_a_delete_and_a_re_creation_out_of_order_in_one_batch() -> None:
    account = open_account()
    t = utc(2027, 1, 16)
    account.record_contact_changes([change(ContactState("c1", 2, email="a@x"), t)], {})
    # v4 (re-created) arrives before v3 (the delete): v3 is stale and ignored
    _, applied = account.record_contact_changes(
        [
            change(ContactState("c1", 4, user_id="u"), t),
            change(ContactState.tombstone("c1", 3), t),
        ],
        {"c1": (2, True)},
    )
    assert [(c.version, c.deleted) for c in applied] == [(4, False)]
    assert account.billable == 1
    # a contact that loses every identifier stops counting without a delete
    account.record_contact_changes([change(ContactState("c1", 5, email=""), t)], {"c1": (4, True)})
    assert account.billable == 0


def test_a_batch_that_would_drive_the_count_negative_raises_and_changes_nothing() -> None:
    account = open_account()
    t = utc(2027, 1, 16)
    account.record_contact_changes([change(ContactState("c1", 1, email="a@x"), t)], {})
    account.collect_events()
    before = state(account)
    # the stored copy claims two billable contacts the running count (1) never had
    with pytest.raises(NegativeBillableCount):
        account.record_contact_changes(
            [
                change(ContactState.tombstone("c1", 2), t),
                change(ContactState.tombstone("c9", 2), t),
            ],
            {"c1": (1, True), "c9": (1, True)},
        )
    assert state(account) == before
    assert account.collect_events() == []
    account.check_invariants()


# ---------------------------------------------------------------- 8. contacts as of


def test_contacts_as_of_rebuilds_the_billable_listing_from_the_history() -> None:
    account = open_account()

    def at(hour: int) -> datetime:
        return utc(2027, 1, 16, hour)

    account.record_contact_changes(
        [
            change(ContactState("c1", 1, email="a@x"), at(9)),
            change(ContactState("c2", 1, phone="+31"), at(10)),
        ],
        {},
    )
    account.record_contact_changes(
        [
            change(ContactState.tombstone("c2", 2), at(12)),
            # c3's v2 happened at 11:00 but its v1 is timed later, at 13:00
            change(ContactState("c3", 2, user_id="u"), at(11)),
            change(ContactState("c1", 2, web_push=True, email=" "), at(14)),
        ],
        {"c1": (1, True), "c2": (1, True)},
    )
    account.record_contact_changes(
        [change(ContactState("c3", 1, chat_replied=True), at(13))],
        {},  # unknown to the store
    )
    events = account.collect_events()

    def listing(hour: int) -> dict[str, tuple[int, tuple[str, ...]]]:
        return {cid: (c.version, c.reasons) for cid, c in contacts_as_of(events, at(hour)).items()}

    assert listing(8) == {}
    assert listing(9) == {"c1": (1, ("email",))}
    assert listing(10) == {"c1": (1, ("email",)), "c2": (1, ("phone",))}
    assert listing(11) == {
        "c1": (1, ("email",)),
        "c2": (1, ("phone",)),
        "c3": (2, ("user_id",)),
    }
    # c2 deleted at 12:00
    assert listing(12) == {"c1": (1, ("email",)), "c3": (2, ("user_id",))}
    # c3's v1 (13:00) is visible now, but v2 is the higher version: still user_id
    assert listing(13) == {"c1": (1, ("email",)), "c3": (2, ("user_id",))}
    assert listing(14) == {"c1": (2, ("web_push",)), "c3": (2, ("user_id",))}
    # the same through ledger.contacts.billable directly, from every recorded change
    changes = [
        c
        for e in events
        if isinstance(e, ContactsAccount.ContactsChanged)
        for c in e.changes  # type: ignore[attr-defined]
    ]
    assert list(billable_as_of(changes, at(14))) == ["c1", "c3"]
    assert list(billable_as_of(changes, at(12) - MICRO)) == ["c1", "c2", "c3"]
    # the replay holds too
    assert state(replayed(events)) == state(account)


def contact_changes(events: Sequence[Any]) -> list[Any]:
    """Every change the ``ContactsChanged`` events recorded, in order."""
    return [
        c
        for e in events
        if isinstance(e, ContactsAccount.ContactsChanged)
        for c in e.changes  # type: ignore[attr-defined]
    ]


def test_a_contact_change_after_the_latest_priced_renewal_counts_from_its_event_time() -> None:
    account = open_account()
    counter = Counter({OPENED: 1})
    # nothing priced yet: even a change dated before the opening counts from its time
    before = utc(2027, 1, 14)
    _, applied = account.record_contact_changes(
        [change(ContactState("c0", 1, email="a@x"), before)], {}
    )
    assert [(c.counted_from, c.counts_from) for c in applied] == [(None, before)]
    close(account, OPENED + GRACE, counter)
    assert account.counted_through == OPENED
    # one microsecond after the opening instant priced: not late
    _, applied = account.record_contact_changes(
        [change(ContactState("c1", 1, phone="+31"), OPENED + MICRO)], {}
    )
    assert [(c.counted_from, c.counts_from) for c in applied] == [(None, OPENED + MICRO)]
    events = account.collect_events()
    assert [c.counted_from for c in contact_changes(events)] == [None, None]
    assert list(contacts_as_of(events, OPENED)) == ["c0"]
    assert list(contacts_as_of(events, OPENED + MICRO)) == ["c0", "c1"]


def test_a_contact_change_at_or_before_the_latest_priced_renewal_counts_from_just_after_it() -> (
    None
):
    account = open_account()
    counter = Counter({OPENED: 0, FEB_15: 3})  # the stand-in: whatever it is given
    close(account, OPENED + GRACE, counter)
    assert account.counted_through == OPENED
    _, applied = account.record_contact_changes(
        [
            change(ContactState("c1", 1, email="a@x"), OPENED - timedelta(hours=1)),
            change(ContactState("c2", 1, phone="+31"), OPENED),  # at the instant: late too
            change(ContactState("c3", 1, user_id="u"), OPENED + MICRO),  # after: on time
        ],
        {},
    )
    # the opening (10:00:00) is priced: the first two count from 10:00:00.000001
    assert [(c.contact_id, c.counted_from, c.counts_from) for c in applied] == [
        ("c1", OPENED + MICRO, OPENED + MICRO),
        ("c2", OPENED + MICRO, OPENED + MICRO),
        ("c3", None, OPENED + MICRO),
    ]
    close(account, FEB_15 + GRACE, counter)
    assert account.counted_through == FEB_15
    # reported after the Feb 15 renewal was priced: dated Jan 20 and Feb 1, they count
    # from Feb 15 00:00:00.000001; one dated Feb 16 counts from its own time
    _, applied = account.record_contact_changes(
        [
            change(ContactState("c4", 1, web_push=True), utc(2027, 1, 20)),
            change(ContactState.tombstone("c1", 2), utc(2027, 2, 1)),
            change(ContactState("c5", 1, chat_replied=True), utc(2027, 2, 16)),
        ],
        {"c1": (1, True)},
    )
    assert [(c.contact_id, c.counted_from) for c in applied] == [
        ("c4", FEB_15 + MICRO),
        ("c1", FEB_15 + MICRO),
        ("c5", None),
    ]
    # c1, c2, c3 then c4 and c5 in, c1 out
    assert account.billable == 4
    events = account.collect_events()
    # what the events hold (what an auditor replays and the store copies)
    assert [(c.contact_id, c.version, c.counted_from) for c in contact_changes(events)] == [
        ("c1", 1, OPENED + MICRO),
        ("c2", 1, OPENED + MICRO),
        ("c3", 1, None),
        ("c4", 1, FEB_15 + MICRO),
        ("c1", 2, FEB_15 + MICRO),
        ("c5", 1, None),
    ]

    def listing(at: datetime) -> list[str]:
        return list(contacts_as_of(events, at))

    # the count rebuilt for each priced instant is the one it was priced with
    assert listing(OPENED) == []
    assert listing(OPENED + MICRO) == ["c1", "c2", "c3"]
    # Feb 15 was priced before c4 and the delete of c1 were known
    assert listing(FEB_15) == ["c1", "c2", "c3"]
    assert listing(FEB_15 + MICRO) == ["c2", "c3", "c4"]
    assert listing(utc(2027, 2, 16)) == ["c2", "c3", "c4", "c5"]
    assert list(billable_as_of(contact_changes(events), FEB_15)) == ["c1", "c2", "c3"]
    assert state(replayed(events)) == state(account)
