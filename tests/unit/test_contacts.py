from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.contacts import (
    BillableCount,
    ContactMismatch,
    ContactState,
    InvalidContactState,
    NegativeBillableCount,
    apply_change,
    billable_delta,
    is_billable,
    reasons,
)
from ledger.errors import LedgerError


def contact(version: int = 1, contact_id: str = "c-1", **fields: Any) -> ContactState:
    return ContactState(contact_id=contact_id, version=version, **fields)


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
    incoming = contact(3, email="a@b.c")
    assert apply_change(None, incoming) == incoming


def test_a_newer_version_replaces_the_held_one() -> None:
    held = contact(3, email="a@b.c")
    incoming = contact(4, phone="1")
    assert apply_change(held, incoming) == incoming


def test_a_stale_version_is_ignored() -> None:
    assert apply_change(contact(5, email="a@b.c"), contact(4)) is None


def test_a_duplicate_version_is_ignored_even_with_other_content() -> None:
    held = contact(5, email="a@b.c")
    assert apply_change(held, held) is None
    assert apply_change(held, contact(5, phone="2")) is None  # first seen wins


def test_a_change_of_another_contact_is_refused() -> None:
    with pytest.raises(ContactMismatch):
        apply_change(contact(1, contact_id="c-1"), contact(2, contact_id="c-2"))


def test_delete_then_recreate_counts_the_contact_again() -> None:
    # v1 email (+1), v2 delete (-1), v1 again (stale: 0), v3 phone (+1)
    count = BillableCount()
    held: ContactState | None = None
    changes = [
        contact(1, email="a@b.c"),
        ContactState.tombstone("c-1", 2),
        contact(1, email="a@b.c"),
        contact(3, phone="+1 555"),
    ]
    seen = []
    for change in changes:
        new = apply_change(held, change)
        count = count.after(held, new)
        seen.append(count.value)
        held = new if new is not None else held
    assert seen == [1, 0, 0, 1]
    assert held == contact(3, phone="+1 555")


def test_a_delete_that_overtakes_an_older_update_keeps_the_contact_deleted() -> None:
    # the delete (v3) arrives before the update it superseded (v2)
    held = apply_change(contact(1, email="a@b.c"), ContactState.tombstone("c-1", 3))
    assert held == ContactState.tombstone("c-1", 3)
    assert apply_change(held, contact(2, email="a@b.c", web_push=True)) is None


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
        (contact(1, email="a@b.c"), None, 0),  # change ignored
    ],
)
def test_billable_delta(old: ContactState | None, new: ContactState | None, delta: int) -> None:
    assert billable_delta(old, new) == delta
    assert BillableCount.delta(old, new) == delta


def test_the_billable_count_never_goes_negative() -> None:
    with pytest.raises(NegativeBillableCount):
        BillableCount(-1)
    with pytest.raises(NegativeBillableCount):
        BillableCount(0).after(contact(1, email="a@b.c"), ContactState.tombstone("c-1", 2))


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
    # the seed's rule written out again, independently of ledger.contacts
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
    held: ContactState | None = None
    for change in delivery:
        new = apply_change(held, change)
        if new is not None:
            assert held is None or new.version > held.version
            held = new
    assert held == newest


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
    held: dict[str, ContactState] = {}
    count = BillableCount()
    for change in stream:
        old = held.get(change.contact_id)
        new = apply_change(old, change)
        count = count.after(old, new)
        if new is not None:
            held[change.contact_id] = new
    newest = [max(changes, key=lambda c: c.version) for changes in per_contact]
    assert count.value == sum(_oracle_billable(s) for s in newest)
    assert count.value == sum(is_billable(s) for s in held.values())
