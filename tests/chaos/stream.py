"""A seeded stream of upstream facts for the fault suite, and the order it is published in.

Everything here is derived from ``random.Random(seed)`` and the sizes only, so
a seed replays the same facts in the same publication order.

The stream is shaped so that its expected outcome is plain arithmetic whatever
the ledger's processes do in between (see ``oracle.py``):

- Phases with a barrier between them: October (with the openings), then
  November. November is published only once the accounts topic is consumed
  to its end, because facts on different topics are consumed by different
  processes in no particular order, and a November email applied before its
  account's plan change would be priced on the old plan. Within October,
  credits and emails may come before their account's opening (they are
  parked until it opens); ``allow_early_facts=False`` puts the openings in a
  phase of their own instead.
- Plan changes only on the last day of October, local time, inside a quiet
  day without emails: October is billed on the old plan, November on the new.
- Prepaid credits far above what an account can spend: the only status events
  are "blocked" at the opening (its fee is debited) and "unblocked" at the
  first credit.
- Within a phase a fact is published up to ``reorder`` facts away from its
  time order; every fact is published 2-3 times in all, each extra copy (same
  CloudEvent id and source) at a random later position.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

MONTHS = ((2026, 10), (2026, 11))
#: plan id -> (kind, currency); the email plans' terms are copied in oracle.py.
EMAIL_PLANS = {"email-starter": "EUR", "email-volume": "EUR", "email-usd": "USD"}
TIMEZONES = ("UTC", "Europe/Berlin")
TAX_RATES = ("0.20", "0", "0.07")
SOURCES = {
    "accounts": "urn:chaos:panel",
    "email_sent": "urn:chaos:mta",
    "contact_changed": "urn:chaos:crm",
}


@dataclass(frozen=True)
class Fact:
    role: str  # input topic role: accounts, email_sent, contact_changed
    type: str
    id: str
    time: datetime
    data: dict[str, Any]

    @property
    def account(self) -> str:
        return str(self.data["account_id"])

    def value(self) -> bytes:
        return json.dumps(
            {
                "specversion": "1.0",
                "id": self.id,
                "source": SOURCES[self.role],
                "type": self.type,
                "time": self.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                "datacontenttype": "application/json",
                "data": self.data,
            }
        ).encode()


@dataclass(frozen=True)
class Account:
    id: str
    plan: str
    payment_mode: str
    currency: str
    timezone: str
    tax_rate: str
    #: the plan from the last day of October on (None: no change)
    new_plan: str | None = None

    @property
    def is_contacts(self) -> bool:
        return self.plan.startswith("contacts-")


@dataclass
class Stream:
    seed: int
    accounts: list[Account]
    facts: list[Fact]
    #: publication order: indexes into ``facts``, each fact 2-3 times
    order: list[int]
    #: positions in ``order`` before which the accounts topic must be consumed
    barriers: list[int] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return len(self.order) - len(self.facts)


def local(account: Account, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=ZoneInfo(account.timezone))  # type: ignore[misc]


def _accounts(rng: random.Random, count: int) -> list[Account]:
    contacts = max(2, count // 10)
    accounts = []
    for index in range(count):
        name = f"acct-{index:03d}"
        if index < contacts:
            accounts.append(Account(name, "contacts-basic", "postpaid", "EUR", "UTC", "0"))
            continue
        plan = ("email-starter", "email-volume", "email-usd")[index % 3]
        mode = ("prepaid", "postpaid")[(index // 3) % 2]
        new_plan = None
        if plan != "email-usd" and rng.random() < 0.3:
            new_plan = "email-volume" if plan == "email-starter" else "email-starter"
        accounts.append(
            Account(
                name,
                plan,
                mode,
                EMAIL_PLANS[plan],
                TIMEZONES[index % 2],
                rng.choice(TAX_RATES),
                new_plan,
            )
        )
    return accounts


def _random_time(rng: random.Random, start: datetime, end: datetime) -> datetime:
    seconds = (end - start).total_seconds()
    return start + timedelta(seconds=rng.uniform(0, seconds), microseconds=0)


def _email_window(account: Account, month: tuple[int, int]) -> tuple[datetime, datetime]:
    """October leaves its last day quiet (plan changes happen in it)."""
    if month == (2026, 10):
        return local(account, 2026, 10, 1, 1), local(account, 2026, 10, 31)
    return local(account, 2026, 11, 1, 1), local(account, 2026, 11, 30, 23)


def generate(
    seed: int,
    *,
    facts: int,
    accounts: int,
    reorder: int = 50,
    duplicate_spread: int = 2000,
    allow_early_facts: bool = False,
    heavy: float = 0.0,
) -> Stream:
    """``heavy``: the share of the emails the first email account sends in October
    (a short stream needs it to reach a charged tier)."""
    rng = random.Random(seed)
    people = _accounts(rng, accounts)
    ids = iter(range(1, 10**9))

    def fact(role: str, kind: str, at: datetime, **data: Any) -> Fact:
        return Fact(role, kind, f"{role}-{next(ids)}", at, data)

    opening: list[Fact] = []
    months: dict[tuple[int, int], list[Fact]] = {m: [] for m in MONTHS}
    for account in people:
        extra: dict[str, Any] = {"timezone": account.timezone, "tax_rate": account.tax_rate}
        if account.is_contacts:
            extra = {"billing_period": "month"}
        opened_at = local(account, 2026, 10, 1)
        opening.append(
            fact(
                "accounts",
                "account.opened",
                opened_at,
                account_id=account.id,
                plan=account.plan,
                payment_mode=account.payment_mode,
                currency=account.currency,
                **extra,
            )
        )
        if account.payment_mode == "prepaid":
            # Not in the openings' phase: reordered there, it could overtake its opening.
            months[(2026, 10)].append(
                fact(
                    "accounts",
                    "account.credit-purchased",
                    opened_at + timedelta(minutes=30),
                    account_id=account.id,
                    amount="5000.00",
                )
            )
            at = _random_time(rng, *_email_window(account, (2026, 10)))
            months[(2026, 10)].append(
                fact(
                    "accounts",
                    "account.credit-purchased",
                    at,
                    account_id=account.id,
                    amount="250.50",
                )
            )
        if account.new_plan:
            months[(2026, 10)].append(
                fact(
                    "accounts",
                    "account.plan-changed",
                    local(account, 2026, 10, 31, 12),
                    account_id=account.id,
                    plan=account.new_plan,
                )
            )
    budget = facts - len(opening) - sum(len(m) for m in months.values())
    contacts_accounts = [a for a in people if a.is_contacts]
    email_accounts = [a for a in people if not a.is_contacts]
    contact_budget = budget // 10
    for account in contacts_accounts:
        _contacts(rng, account, contact_budget // len(contacts_accounts), fact, months)
    emails = facts - len(opening) - sum(len(m) for m in months.values())
    # Skewed volumes: a few accounts reach the higher tiers, most stay small.
    weights = [rng.lognormvariate(0, 1.2) for _ in email_accounts]
    if heavy:
        weights[0] = sum(weights[1:]) * heavy / (1 - heavy)
    scale = emails / sum(weights)
    counts = [int(w * scale) for w in weights]
    counts[0] += emails - sum(counts)
    heavy_emails = counts[0] if heavy else 0
    for account, count in zip(email_accounts, counts, strict=True):
        for number in range(count):
            month = MONTHS[number >= heavy_emails and rng.random() < 0.5]
            route = "custom_smtp" if rng.random() < 0.08 else "platform"
            at = _random_time(rng, *_email_window(account, month))
            email_id = next(ids)
            months[month].append(
                Fact(
                    "email_sent",
                    "email.sent",
                    f"email_sent-{email_id}",
                    at,
                    {"account_id": account.id, "message_id": f"<{email_id}@chaos>", "route": route},
                )
            )
    all_facts: list[Fact] = []
    phases: list[list[int]] = []
    grouped = (
        [opening + months[(2026, 10)], months[(2026, 11)]]
        if allow_early_facts
        else [opening, months[(2026, 10)], months[(2026, 11)]]
    )
    for phase in grouped:
        phase.sort(key=lambda f: f.time)
        phases.append(list(range(len(all_facts), len(all_facts) + len(phase))))
        all_facts.extend(phase)
    order, barriers = _publication_order(rng, phases, reorder, duplicate_spread)
    return Stream(seed, people, all_facts, order, barriers)


def _contacts(
    rng: random.Random,
    account: Account,
    budget: int,
    fact: Any,
    months: dict[tuple[int, int], list[Fact]],
) -> None:
    """Contacts created, changed, deleted, re-created; versions increase per contact;
    some versions are re-sent later as new facts (stale: they change nothing)."""
    start, end = local(account, 2026, 10, 1, 1), local(account, 2026, 11, 30, 23)
    made = 0
    contact = 0
    while made < budget:
        contact += 1
        contact_id = f"c-{contact}"
        times = sorted(_random_time(rng, start, end) for _ in range(rng.randint(1, 4)))
        sent: list[Fact] = []
        for version, at in enumerate(times, start=1):
            if version > 1 and rng.random() < 0.25:
                body = fact(
                    "contact_changed",
                    "contact.deleted",
                    at,
                    account_id=account.id,
                    contact_id=contact_id,
                    version=version,
                )
            else:
                body = fact(
                    "contact_changed",
                    "contact.changed",
                    at,
                    account_id=account.id,
                    contact_id=contact_id,
                    version=version,
                    email=f"{contact_id}@example.org" if rng.random() < 0.6 else None,
                    phone="+4930123456" if rng.random() < 0.2 else None,
                    user_id=None,
                    chat_replied=rng.random() < 0.1,
                    web_push=False,
                )
            sent.append(body)
        if len(sent) > 1 and rng.random() < 0.3:
            stale = rng.choice(sent[:-1])
            resend = fact(
                "contact_changed", stale.type, _random_time(rng, sent[-1].time, end), **stale.data
            )
            sent.append(resend)
        for body in sent:
            months[(body.time.year, body.time.month) if body.time < end else (2026, 11)].append(
                body
            )
        made += len(sent)


def _publication_order(
    rng: random.Random, phases: list[list[int]], reorder: int, spread: int
) -> tuple[list[int], list[int]]:
    """Each fact within ``reorder`` places of its time order (within its phase), then
    1-2 more copies each at a random later place (any phase after it)."""
    slots: list[tuple[float, int]] = []
    barriers: list[float] = []
    base = 0
    for phase in phases:
        keyed = sorted((rank + rng.uniform(0, reorder), index) for rank, index in enumerate(phase))
        slots.extend((base + rank, index) for rank, (_, index) in enumerate(keyed))
        base += len(phase)
        barriers.append(base - 0.5)
    copies = [
        (position + rng.randint(1, spread) + rng.random() * 0.5, index)
        for position, index in slots
        for _ in range(rng.randint(1, 2))
    ]
    ordered = sorted(slots + copies)
    order = [index for _, index in ordered]
    positions = [pos for pos, _ in ordered]
    cuts = [sum(1 for p in positions if p < b) for b in barriers[:-1]]
    return order, cuts
