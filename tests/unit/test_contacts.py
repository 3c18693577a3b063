from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.contacts.billable import (
    JUST_AFTER,
    BillableCount,
    ContactState,
    Held,
    InvalidContactState,
    NegativeBillableCount,
    apply_changes,
    billable_delta,
    reasons,
    supersedes,
)
from ledger.errors import InvariantBroken, LedgerError


def contact(version: int = 1, contact_id: str = "c-1", **fields: Any) -> ContactState:
    return ContactState(contact_id=contact_id, version=version, **fields)


def is_billable(state: ContactState | None) -> bool:
    return state is not None and bool(reasons(state))


T0 = datetime(2027, 3, 10, 9, tzinfo=UTC)


@dataclass(frozen=True)
class Change:
    state: ContactState
    changed_at: datetime = T0


def held_of(state: ContactState) -> Held:
    return (state.version, is_billable(state))


# ------------------------------------------------ who is billable


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "ana@example.com"),
        ("phone", "+48 600 100 200"),
        ("user_id", "u-42"),
        ("chat_replied", True),
        ("web_push", True),
    ],
)
def test_each_identifier_alone_makes_a_contact_billable(field: str, value: Any) -> None:
    fields: dict[str, Any] = {field: value}
    state = contact(**fields)
    assert is_billable(state)
    assert reasons(state) == (field,)


def test_a_contact_without_identifiers_is_not_billable() -> None:
    state = contact()
    assert not is_billable(state)
    assert reasons(state) == ()


@pytest.mark.parametrize("field", ["email", "phone", "user_id"])
@pytest.mark.parametrize("blank", ["", " ", "\t\n "])
def test_empty_and_whitespace_identifiers_do_not_count(field: str, blank: str) -> None:
    fields: dict[str, Any] = {field: blank}
    assert not is_billable(contact(**fields))


def test_a_chat_the_user_did_not_reply_in_and_no_web_push_do_not_count() -> None:
    assert not is_billable(contact(chat_replied=False, web_push=False))


def test_reasons_name_every_identifier_in_a_fixed_order() -> None:
    assert reasons(contact(web_push=True, email="a@b.c")) == ("email", "web_push")
    everything = contact(email="a@b.c", phone="1", user_id="u", chat_replied=True, web_push=True)
    assert reasons(everything) == ("email", "phone", "user_id", "chat_replied", "web_push")
    # a blank email next to a phone: only the phone is a reason
    assert reasons(contact(email=" ", phone="1")) == ("phone",)


def test_a_deleted_contact_is_not_billable_whatever_it_carries() -> None:
    assert not is_billable(contact(email="a@b.c", web_push=True, deleted=True))
    assert reasons(contact(email="a@b.c", deleted=True)) == ()
    assert not is_billable(ContactState.tombstone("c-1", 7))
    assert not is_billable(None)


@pytest.mark.parametrize(
    "fields",
    [
        {"contact_id": "", "version": 1},
        {"contact_id": "  ", "version": 1},
        {"contact_id": "c-1", "version": -1},
        {"contact_id": "c-1", "version": True},
        {"contact_id": "c-1", "version": "3"},
    ],
)
def test_invalid_contact_states_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(InvalidContactState):
        ContactState(**fields)  # type: ignore[arg-type]
    assert issubclass(InvalidContactState, LedgerError)


# ------------------------------------------------ versions


def test_the_first_change_of_a_contact_is_applied() -> None:
    assert supersedes(contact(3, email="a@b.c"), None)


def test_a_newer_version_replaces_the_held_one() -> None:
    assert supersedes(contact(4, phone="1"), held_of(contact(3, email="a@b.c")))


def test_a_stale_version_is_ignored() -> None:
    assert not supersedes(contact(4), held_of(contact(5, email="a@b.c")))


def test_a_duplicate_version_is_ignored_even_with_other_content() -> None:
    held = held_of(contact(5, email="a@b.c"))
    assert not supersedes(contact(5, email="a@b.c"), held)
    count, applied = apply_changes(
        [Change(contact(5, email="a@b.c")), Change(contact(5, phone="2"))],
        {},
        BillableCount(),
        None,
    )
    assert [c.reasons for c in applied] == [("email",)]  # first seen wins
    assert count.value == 1


def test_delete_then_recreate_counts_the_contact_again() -> None:
    # v1 email (+1), v2 delete (-1), v1 again (stale: 0), v3 phone (+1)
    changes = [
        contact(1, email="a@b.c"),
        ContactState.tombstone("c-1", 2),
        contact(1, email="a@b.c"),
        contact(3, phone="+1 555"),
    ]
    seen = []
    count, held = BillableCount(), {}
    for change in changes:
        count, applied = apply_changes([Change(change)], held, count, None)
        for c in applied:
            held = {c.contact_id: (c.version, c.billable)}
        seen.append(count.value)
    assert seen == [1, 0, 0, 1]
    assert held == {"c-1": (3, True)}
    whole, applied = apply_changes([Change(c) for c in changes], {}, BillableCount(), None)
    assert whole.value == 1
    assert [c.version for c in applied] == [1, 2, 3]


def test_a_delete_that_overtakes_an_older_update_keeps_the_contact_deleted() -> None:
    # the delete (v3) arrives before the update it superseded (v2)
    count, applied = apply_changes(
        [Change(ContactState.tombstone("c-1", 3)), Change(contact(2, email="a@b.c"))],
        {"c-1": (1, True)},
        BillableCount(1),
        None,
    )
    assert count.value == 0
    assert [(c.version, c.deleted) for c in applied] == [(3, True)]


@pytest.mark.parametrize(
    ("old", "new", "delta"),
    [
        (None, contact(1, email="a@b.c"), +1),  # new billable contact
        (None, contact(1), 0),  # new contact with nothing billable
        (contact(1, email="a@b.c"), contact(2, phone="1"), 0),  # still billable
        (contact(1, email="a@b.c"), contact(2, email=""), -1),  # email cleared
        (contact(1), contact(2, chat_replied=True), +1),  # user wrote in the chat
        (contact(1, web_push=True), ContactState.tombstone("c-1", 2), -1),  # deleted
        (contact(1), ContactState.tombstone("c-1", 2), 0),  # deleted, was not billable
        (ContactState.tombstone("c-1", 2), contact(3, user_id="u"), +1),  # re-created
    ],
)
def test_billable_delta(old: ContactState | None, new: ContactState, delta: int) -> None:
    held = None if old is None else held_of(old)
    assert billable_delta(held, is_billable(new)) == delta
    assert BillableCount(1).after(held, is_billable(new)).value == 1 + delta


def test_an_ignored_change_moves_nothing() -> None:
    count, applied = apply_changes(
        [Change(contact(1, phone="1"))], {"c-1": (1, True)}, BillableCount(1), None
    )
    assert (count, applied) == (BillableCount(1), ())


def test_the_billable_count_never_goes_negative() -> None:
    with pytest.raises(NegativeBillableCount):
        BillableCount(-1)
    with pytest.raises(NegativeBillableCount):
        BillableCount(0).after((1, True), False)


def test_a_negative_count_is_a_broken_invariant_not_a_refusal() -> None:
    assert issubclass(NegativeBillableCount, InvariantBroken)
    assert not issubclass(NegativeBillableCount, LedgerError)


def test_a_change_dated_at_or_before_the_latest_priced_renewal_counts_from_just_after_it() -> None:
    priced = T0
    _, applied = apply_changes(
        [
            Change(contact(1, "c-1", email="a@b.c"), priced - timedelta(days=1)),
            Change(contact(1, "c-2", email="a@b.c"), priced),
            Change(contact(1, "c-3", email="a@b.c"), priced + JUST_AFTER),
        ],
        {},
        BillableCount(),
        priced,
    )
    assert [c.counts_from for c in applied] == [priced + JUST_AFTER] * 3
    assert [c.counted_from for c in applied] == [priced + JUST_AFTER] * 2 + [None]


# ------------------------------------------------ properties

identifiers = st.one_of(st.none(), st.just(""), st.just("  "), st.text(min_size=1, max_size=5))


@st.composite
def versioned_changes(draw: st.DrawFn, contact_id: str = "c-1") -> list[ContactState]:
    versions = draw(st.lists(st.integers(0, 10_000), min_size=1, max_size=12, unique=True))
    return [
        ContactState(
            contact_id=contact_id,
            version=version,
            email=draw(identifiers),
            phone=draw(identifiers),
            user_id=draw(identifiers),
            chat_replied=draw(st.booleans()),
            web_push=draw(st.booleans()),
            deleted=draw(st.booleans()),
        )
        for version in versions
    ]


def _oracle_billable(state: ContactState) -> bool:
    # the seed's rule written out again, independently of ledger.contacts.billable
    if state.deleted:
        return False
    texts = [state.email, state.phone, state.user_id]
    return any(t is not None and t.strip() for t in texts) or state.chat_replied or state.web_push


@given(versioned_changes(), st.randoms(use_true_random=False), st.integers(0, 6))
def test_any_delivery_order_ends_in_the_highest_version(
    changes: list[ContactState], rnd: random.Random, redelivered: int
) -> None:
    newest = max(changes, key=lambda c: c.version)
    delivery = changes + [rnd.choice(changes) for _ in range(redelivered)]
    rnd.shuffle(delivery)
    count, applied = apply_changes([Change(c) for c in delivery], {}, BillableCount(), None)
    versions = [c.version for c in applied]
    assert versions == sorted(set(versions))  # each applied change is newer than the last
    assert versions[-1] == newest.version
    assert applied[-1].reasons == reasons(newest)
    assert count.value == int(_oracle_billable(newest))


@given(
    st.lists(versioned_changes(), min_size=1, max_size=6),
    st.randoms(use_true_random=False),
)
def test_the_running_count_equals_the_billable_contacts_after_any_order(
    per_contact: list[list[ContactState]], rnd: random.Random
) -> None:
    # several contacts' changes interleaved, reordered and partly redelivered
    stream = [
        ContactState(
            contact_id=f"c-{i}",
            version=c.version,
            email=c.email,
            phone=c.phone,
            user_id=c.user_id,
            chat_replied=c.chat_replied,
            web_push=c.web_push,
            deleted=c.deleted,
        )
        for i, changes in enumerate(per_contact)
        for c in changes
    ]
    stream += rnd.sample(stream, k=len(stream) // 2)
    rnd.shuffle(stream)
    # delivered in batches of random sizes, each seeing what the batches before stored
    held: dict[str, Held] = {}
    count = BillableCount()
    while stream:
        size = rnd.randint(1, len(stream))
        batch, stream = stream[:size], stream[size:]
        count, applied = apply_changes([Change(c) for c in batch], held, count, None)
        held.update({c.contact_id: (c.version, c.billable) for c in applied})
    newest = [max(changes, key=lambda c: c.version) for changes in per_contact]
    assert count.value == sum(_oracle_billable(s) for s in newest)
    assert count.value == sum(billable for _, billable in held.values())
