"""Billable contacts: who counts, and which version of a contact is the truth.

A contact is billable (seed 002) when it has at least one of:

- an ``email`` address,
- a ``phone`` number,
- a ``user_id``,
- a chat conversation in which the user wrote (``chat_replied``),
- a web push subscription (``web_push``),

and it is not deleted. A string identifier counts only when something is left
after stripping whitespace: upstream sends ``""`` or ``" "`` for "cleared",
and nobody should pay for a blank field.

Upstream numbers each contact's changes with an increasing ``version``. Kafka
redelivers and reorders, so a change is applied only when its version is
strictly newer than the one held: an older version is stale, an equal one is
a duplicate (the first one seen wins, so a replay is deterministic), and both
are ignored. A delete is kept as a *tombstone*: a state with ``deleted=True``
and the delete's version. Forgetting the contact instead would let a stale
change that arrives after the delete bring it back; with the tombstone, only a
re-creation with a higher version counts the contact again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from ledger.errors import InvariantBroken, LedgerError

#: The identifiers that make a contact billable, in the order reasons are named.
BILLABLE_FIELDS: tuple[str, ...] = ("email", "phone", "user_id", "chat_replied", "web_push")


#: What the ledger holds of a contact's latest applied version: ``(version, billable)``.
Held = tuple[int, bool]

#: A contact change reported after the renewal it predates counts from just after it.
JUST_AFTER = timedelta(microseconds=1)


class ContactError(LedgerError):
    """A contact change upstream described wrongly."""


class InvalidContactState(ContactError):
    pass


class NegativeBillableCount(InvariantBroken):
    """Only a lost or doubled change (a bug, or a corrupted store) can get here."""

    def __init__(self, count: int) -> None:
        super().__init__(f"the billable contact count cannot go below zero (got {count})")


@dataclass(frozen=True, slots=True)
class ContactState:
    """One version of one contact, as upstream last described it."""

    contact_id: str
    version: int
    email: str | None = None
    phone: str | None = None
    user_id: str | None = None
    chat_replied: bool = False
    web_push: bool = False
    deleted: bool = False

    def __post_init__(self) -> None:
        if not self.contact_id.strip():
            raise InvalidContactState("a contact needs a non-empty contact_id")
        # bool is an int subclass; True as a version is a bug upstream, not version 1.
        if isinstance(self.version, bool) or not isinstance(self.version, int):
            raise InvalidContactState(f"contact version must be an integer, got {self.version!r}")
        if self.version < 0:
            raise InvalidContactState(f"contact version must be >= 0, got {self.version}")

    @classmethod
    def tombstone(cls, contact_id: str, version: int) -> ContactState:
        """What ``contact.deleted`` leaves behind: no identifiers, the delete's version."""
        return cls(contact_id=contact_id, version=version, deleted=True)


def _present(value: str | None) -> bool:
    return value is not None and value.strip() != ""


def reasons(state: ContactState) -> tuple[str, ...]:
    """The identifiers that make the contact billable, in :data:`BILLABLE_FIELDS` order.

    Empty for a deleted contact, whatever identifiers it still carries: the
    auditor's ``ledger contacts --as-of`` shows exactly these names.
    """
    if state.deleted:
        return ()
    flags = (
        _present(state.email),
        _present(state.phone),
        _present(state.user_id),
        state.chat_replied,
        state.web_push,
    )
    return tuple(name for name, flag in zip(BILLABLE_FIELDS, flags, strict=True) if flag)


def supersedes(incoming: ContactState, held: Held | None) -> bool:
    """The version rule: a change applies only when strictly newer than the one held."""
    return held is None or incoming.version > held[0]


def billable_delta(held: Held | None, billable: bool) -> int:
    """How a change moves the billable count: -1, 0 or +1."""
    return int(billable) - int(held is not None and held[1])


@dataclass(frozen=True, slots=True)
class BillableCount:
    """An account's number of billable contacts, moved one change at a time.

    Keeping it as a running sum of :func:`billable_delta` makes the count
    exact at every version without rescanning the contacts; a negative value
    can only come from a lost or doubled change, so it stops the ledger.
    """

    value: int = 0

    def __post_init__(self) -> None:
        if self.value < 0:
            raise NegativeBillableCount(self.value)

    def after(self, held: Held | None, billable: bool) -> BillableCount:
        """The count once a contact held as ``held`` became (non-)billable."""
        return BillableCount(self.value + billable_delta(held, billable))


@dataclass(frozen=True, slots=True)
class ContactChange:
    """One applied change as the ledger stores it: which identifiers made it billable.

    The identifiers' *kinds* are kept, never their values: an email address or
    phone number is personal data, and an append-only store cannot forget it.
    The upstream ``contact_id`` leads back to the contacts database.
    """

    contact_id: str
    version: int
    changed_at: datetime
    reasons: tuple[str, ...]
    deleted: bool = False
    #: Set when the change was reported after a renewal it predates had been
    #: priced: it counts from just after that renewal, never re-opening it.
    counted_from: datetime | None = None

    @property
    def billable(self) -> bool:
        return bool(self.reasons)

    @property
    def counts_from(self) -> datetime:
        return self.changed_at if self.counted_from is None else self.counted_from


def billable_as_of(changes: Iterable[ContactChange], at: datetime) -> dict[str, ContactChange]:
    """The contacts billable at ``at``: the change that made each billable, from history.

    For each contact, the change with the highest version among those that
    count from ``at`` or earlier (their event time, or just after the renewal
    they were reported too late for) is its state then. Applied changes only:
    a stale change was refused when it arrived and is in no history. Ordered
    by contact id.
    """
    latest: dict[str, ContactChange] = {}
    for change in changes:
        if change.counts_from > at:
            continue
        held = latest.get(change.contact_id)
        if held is None or change.version > held.version:
            latest[change.contact_id] = change
    return {cid: c for cid, c in sorted(latest.items()) if c.billable}


class ContactChangeLike(Protocol):
    """What :func:`apply_changes` reads of one incoming change."""

    @property
    def state(self) -> ContactState: ...

    @property
    def changed_at(self) -> datetime: ...


def apply_changes(
    changes: Iterable[ContactChangeLike],
    known: Mapping[str, Held],
    count: BillableCount,
    priced_through: datetime | None,
) -> tuple[BillableCount, tuple[ContactChange, ...]]:
    """A batch of changes in arrival order: the count after them and the changes applied.

    ``known`` holds the stored latest version of the batch's contacts; a change
    applies when it :func:`supersedes` the contact's latest (stored or earlier
    in the batch); a stale or repeated one changes nothing and is in no
    history. A change dated at or before ``priced_through`` (the latest renewal
    priced) counts from just after it: a priced instant is never counted again.
    """
    latest = dict(known)
    applied: list[ContactChange] = []
    after_priced = None if priced_through is None else priced_through + JUST_AFTER
    for change in changes:
        state = change.state
        held = latest.get(state.contact_id)
        if not supersedes(state, held):
            continue
        why = reasons(state)
        billable = bool(why)
        count = count.after(held, billable)
        latest[state.contact_id] = (state.version, billable)
        late = priced_through is not None and change.changed_at <= priced_through
        applied.append(
            ContactChange(
                state.contact_id,
                state.version,
                change.changed_at,
                why,
                state.deleted,
                counted_from=after_priced if late else None,
            )
        )
    return count, tuple(applied)
