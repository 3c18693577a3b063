"""Every number at rest is a function of the facts, not of how they were batched.

One stream of facts (openings, credits, plan changes, emails on both routes
around the month boundaries of four time zones, late emails after a close,
closings of accounts and closes of periods) is fed through the real path -
CloudEvent bytes, ``decode``, ``to_commands``, ``apply_commands``,
``save_batch`` - into an in-memory eventsourcing application, cut into
batches in three ways: every message alone, hypothesis's cut points, and the
largest batches a partition could hold (a batch holds one topic, and a close
of periods runs between batches). The documents, final balances, the usage
read model's numbers and the contacts account's months must be the same.
Each email's dedupe key must also point at an event of its own month.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from eventsourcing.persistence import Tracking
from hypothesis import HealthCheck, given, settings
from hypothesis import event as label
from hypothesis import strategies as st
from unit_builders import numbers

from commands.handlers import BatchWork, apply_commands, save_batch
from consumers.mapping import to_commands
from consumers.messages import TOPIC_TYPES, Accepted, Record, decode
from consumers.upstream_publisher import Outgoing, Upstream
from ledger.application import Ledger
from ledger.contacts.account import ContactsAccount
from ledger.documents import Document
from ledger.emails.account import Account
from ledger.money import Money
from ledger.periods import Month
from ledger.plans import Catalogue, ContactsPlan, ContactTier, EmailPlan, Tier
from projections.usage import LateFigures, OpenMonthFigures, open_month_figures, usage_figures

EMAILS, ACCOUNTS = "billing.email-sent", "billing.accounts"
TOPIC_KIND = {EMAILS: "email_sent", ACCOUNTS: "accounts"}
GRACE = timedelta(hours=1)
#: Decoding in this property is not about the clock: every generated time is accepted.
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# Small tiers, so that a few dozen emails cross them; four-decimal prices, so rounding shows.
GRADUATED = EmailPlan(
    id="grad",
    name="Graduated",
    currency="EUR",
    monthly_fee=Decimal("3.00"),
    included_emails=2,
    tier_mode="graduated",
    tiers=(
        Tier(up_to=5, unit_price=Decimal("0.0150")),
        Tier(up_to=12, unit_price=Decimal("0.0075")),
        Tier(unit_price=Decimal("0.0045")),
    ),
)
VOLUME = EmailPlan(
    id="vol",
    name="Volume",
    currency="EUR",
    monthly_fee=Decimal("4.00"),
    included_emails=3,
    tier_mode="volume",
    tiers=(
        Tier(up_to=6, unit_price=Decimal("0.0250")),
        Tier(up_to=14, unit_price=Decimal("0.0125")),
        Tier(unit_price=Decimal("0.0055")),
    ),
)
VOLUME_2 = VOLUME.model_copy(
    update={"id": "vol2", "name": "Volume 2", "included_emails": 0, "monthly_fee": Decimal(1)}
)
CONTACTS = ContactsPlan(
    id="cont",
    name="Contacts",
    currency="EUR",
    overage_unit_price=Decimal("0.0130"),
    emails_per_contact=1,
    tiers=(
        ContactTier(up_to=10, monthly_price=Decimal("5.00")),
        ContactTier(monthly_price=Decimal("9.00")),
    ),
)
CONTACTS_2 = CONTACTS.model_copy(
    update={"id": "cont2", "name": "Contacts 2", "overage_unit_price": Decimal("0.0070")}
)
EMAIL_PLANS = [GRADUATED, VOLUME, VOLUME_2]
EMAIL_PLAN_IDS = [p.id for p in EMAIL_PLANS]
CATALOGUE = Catalogue({p.id: p for p in [*EMAIL_PLANS, CONTACTS, CONTACTS_2]})
#: What ``ledger contacts --as-of`` would count at every renewal of the contacts account.
BILLABLE_CONTACTS = 3

OPENED_AT = utc("2026-11-28T00:00:00Z")
#: Around local midnight of 1 Dec in Tokyo (UTC+9), Amsterdam (UTC+1), UTC and New York
#: (UTC-5), of 1 Jan in UTC, and a few instants well inside or after those months.
INSTANTS = [
    utc(t)
    for t in [
        "2026-11-27T12:00:00Z",  # before the openings: counts in the opening month
        "2026-11-29T12:00:00Z",
        "2026-11-30T14:59:59Z",
        "2026-11-30T15:00:01Z",
        "2026-11-30T22:59:59Z",
        "2026-11-30T23:00:01Z",
        "2026-11-30T23:59:59Z",
        "2026-12-01T00:00:01Z",
        "2026-12-01T04:59:59Z",
        "2026-12-01T05:00:01Z",
        "2026-12-15T12:00:00Z",
        "2026-12-31T23:59:59Z",
        "2027-01-01T00:00:01Z",
        "2027-01-20T08:00:00Z",
        "2027-02-10T08:00:00Z",
    ]
]
CLOSES = [utc(t) for t in ["2026-12-01T18:00:00Z", "2027-01-01T18:00:00Z", "2027-02-01T18:00:00Z"]]
FINAL_CLOSE = utc("2027-04-01T18:00:00Z")
TIMEZONES = ["UTC", "Europe/Amsterdam", "America/New_York", "Asia/Tokyo"]


@dataclass(frozen=True)
class ClosePeriods:
    as_of: datetime


Fact = Outgoing | ClosePeriods


@dataclass(frozen=True)
class Opening:
    account_id: str
    plan: str
    payment_mode: str
    timezone: str
    tax_rate: str


openings = st.tuples(
    st.sampled_from(["grad", "vol"]),
    st.sampled_from(["prepaid", "postpaid"]),
    st.sampled_from(TIMEZONES),
    st.sampled_from(["grad", "vol"]),
    st.sampled_from(["prepaid", "postpaid"]),
    st.sampled_from(TIMEZONES),
    st.sampled_from(TIMEZONES),
    st.sampled_from(["0", "0.21"]),
).map(
    lambda o: [
        Opening("a", o[0], o[1], o[2], o[7]),
        Opening("b", o[3], o[4], o[5], "0"),
        Opening("c", "cont", "postpaid", o[6], o[7]),
    ]
)

email = st.tuples(
    st.just("email"),
    st.sampled_from(["a", "a", "b", "b", "c"]),
    st.sampled_from(INSTANTS),
    st.sampled_from(["platform"] * 5 + ["custom_smtp"]),
)
burst = st.tuples(st.just("burst"), st.sampled_from(["a", "b", "c"]), st.sampled_from(INSTANTS))
credit = st.tuples(
    st.just("credit"), st.sampled_from(["a", "b"]), st.integers(1, 900), st.sampled_from(INSTANTS)
)
plan_change = st.tuples(
    st.just("plan"), st.sampled_from(["a", "b", "c"]), st.integers(0, 2), st.sampled_from(INSTANTS)
)
closing = st.tuples(st.just("closed"), st.sampled_from(["a", "b", "c"]), st.sampled_from(INSTANTS))
close_periods = st.tuples(st.just("close_periods"), st.sampled_from(CLOSES))
steps = st.lists(
    st.one_of(
        email, email, email, email, burst, burst, credit, plan_change, closing, close_periods
    ),
    min_size=8,
    max_size=50,
)


def stream(accounts: list[Opening], drawn: list[tuple[Any, ...]]) -> list[Fact]:
    """The facts as upstream publishes them, in one order (bytes made once, reused)."""
    mta, panel = Upstream("urn:test:mta"), Upstream("urn:test:panel")
    kinds = {a.account_id: a.plan for a in accounts}
    facts: list[Fact] = [
        panel.event(
            ACCOUNTS,
            "account.opened",
            OPENED_AT,
            {
                "account_id": a.account_id,
                "plan": a.plan,
                "payment_mode": a.payment_mode,
                "currency": "EUR",
                "timezone": a.timezone,
                "tax_rate": a.tax_rate,
            },
        )
        for a in accounts
    ]
    sent = 0

    def mail(account: str, at: datetime, route: str) -> Outgoing:
        nonlocal sent
        sent += 1
        data = {"account_id": account, "message_id": f"<m{sent}@test>", "route": route}
        return mta.event(EMAILS, "email.sent", at, data)

    for step in drawn:
        kind, rest = step[0], step[1:]
        if kind == "email":
            facts.append(mail(*rest))
        elif kind == "burst":  # enough to cross a tier or the allowance at once
            facts.extend(mail(rest[0], rest[1], "platform") for _ in range(9))
        elif kind == "credit":
            account, cents, at = rest
            data = {"account_id": account, "amount": str(Decimal(cents) / 100)}
            facts.append(panel.event(ACCOUNTS, "account.credit-purchased", at, data))
        elif kind == "plan":
            account, choice, at = rest
            plans = ["cont2", "cont", "cont2"] if kinds[account] == "cont" else EMAIL_PLAN_IDS
            data = {"account_id": account, "plan": plans[choice]}
            facts.append(panel.event(ACCOUNTS, "account.plan-changed", at, data))
        elif kind == "closed":
            account, at = rest
            facts.append(panel.event(ACCOUNTS, "account.closed", at, {"account_id": account}))
        else:
            facts.append(ClosePeriods(rest[0]))
    return facts


def batches(facts: Sequence[Fact], cuts: set[int] | None) -> list[list[Outgoing] | ClosePeriods]:
    """Partition batches in stream order: a batch holds one topic and never spans a close;
    besides, ``cuts`` (None: every message alone) says after which facts a batch ends."""
    result: list[list[Outgoing] | ClosePeriods] = []
    current: list[Outgoing] = []
    for index, fact in enumerate(facts):
        if isinstance(fact, ClosePeriods):
            if current:
                result.append(current)
                current = []
            result.append(fact)
            continue
        if current and current[-1].topic != fact.topic:
            result.append(current)
            current = []
        current.append(fact)
        if cuts is None or index in cuts:
            result.append(current)
            current = []
    if current:
        result.append(current)
    return result


@dataclass
class Books:
    """What the ledger holds at rest, and where each email's dedupe key points."""

    ledger: Ledger
    dedupe: dict[str, tuple[str, int]] = field(default_factory=dict)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    issued: list[Document] = field(default_factory=list)
    next_number: Callable[[int], str] = field(default_factory=numbers)


def run(facts: Sequence[Fact], cuts: set[int] | None) -> Books:
    ledger = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    books = Books(ledger)
    offsets = dict.fromkeys(TOPIC_KIND, -1)
    for batch in batches(facts, cuts):
        if isinstance(batch, ClosePeriods):
            close_all(books, batch.as_of)
            continue
        accepted = []
        for message in batch:
            offsets[message.topic] += 1
            record = Record(
                message.topic, 0, offsets[message.topic], message.key.encode(), message.value
            )
            decoded = decode(record, TOPIC_TYPES[TOPIC_KIND[message.topic]], latest_time=FAR_FUTURE)
            assert isinstance(decoded, Accepted), decoded
            accepted.append(decoded)
        work = BatchWork(ledger, CATALOGUE)
        apply_commands(to_commands(accepted), work)
        topic = batch[0].topic
        save_batch(work, Tracking(f"kafka:{topic}:0", offsets[topic]))
        for keys in work.dedupe:
            for origin in keys.origins:
                if origin.message_id is not None:
                    books.dedupe[origin.message_id] = (keys.account_id, keys.originator_version)
        books.rejected += [(o.event_id, r.reason) for r in work.rejections for o in r.origins]
    return books


def close_all(books: Books, as_of: datetime) -> None:
    """What ``commands/closing.py`` does, in memory: every account in id order."""
    for account_id in ["a", "b", "c"]:
        account = books.ledger.find_account(account_id)
        if account is None:
            continue
        if isinstance(account, ContactsAccount):
            books.issued += account.close_periods(
                as_of, GRACE, lambda _: BILLABLE_CONTACTS, books.next_number
            )
        else:
            books.issued += account.close_periods(as_of, GRACE, books.next_number)
        books.ledger.save(account)


def usage_rows(ledger: Ledger, account_id: str) -> dict[str, dict[str, Any]]:
    """The usage read model's rows, folded from the projection's pure part."""
    rows: dict[str, dict[str, Any]] = {}
    for event in ledger.history(account_id):
        for figures in usage_figures(event):
            month = str(figures.month)
            if isinstance(figures, OpenMonthFigures):
                late = rows.get(month, {}).get("late", (0, Decimal(0)))
                rows[month] = {"figures": figures, "late": late}
            else:
                assert isinstance(figures, LateFigures)
                row = rows.setdefault(month, {"figures": None, "late": (0, Decimal(0))})
                count, amount = row["late"]
                row["late"] = (count + figures.late, amount + figures.amount)
    return rows


def replayed(ledger: Ledger, account: Account) -> Account:
    """The account rebuilt from its stored events (encoded and decoded), not the one
    the repository caches: what each event's body does on a replay must be what
    the command did."""
    aggregate: Any = None
    for event in ledger.repository.event_store.get(account.id):
        aggregate = event.mutate(aggregate)
    assert isinstance(aggregate, Account)
    return aggregate


def _state(account: Account) -> dict[str, Any]:
    return {k: v for k, v in vars(account).items() if k != "_pending_events"}


def at_rest(books: Books) -> dict[str, Any]:
    """Everything a user can read, for comparison across splits."""
    ledger = books.ledger
    view: dict[str, Any] = {"rejected": sorted(books.rejected), "issued": books.issued}
    for account_id in ["a", "b"]:
        account = ledger.get_account(account_id)
        assert isinstance(account, Account)
        account.check_invariants()
        assert _state(replayed(ledger, account)) == _state(account)
        usage = usage_rows(ledger, account_id)
        # What the events told the read model of each open month is that month as held.
        for key, month in account.months.items():
            assert usage[key]["figures"] == open_month_figures(month.standing())
        view[account_id] = {
            "credited": account.credited,
            "debited": account.debited,
            "blocked": account.blocked,
            "usage": usage,
        }
    contacts = ledger.get_account("c")
    assert isinstance(contacts, ContactsAccount)
    view["c"] = {
        "months": dict(sorted(contacts.months.items())),
        "proformas": [p.document for p in contacts.open_proformas.values()],
        "late_months": contacts.late_months,
    }
    return view


def check_traces(books: Books, facts: Sequence[Fact]) -> None:
    """Every email billed points at an event that covers its month, and only that month."""
    ledger = books.ledger
    for fact in facts:
        if isinstance(fact, ClosePeriods) or fact.topic != EMAILS:
            continue
        body = json.loads(fact.value)
        message_id = body["data"]["message_id"]
        if message_id not in books.dedupe:
            continue  # its account was not open (dead-lettered)
        account_id, version = books.dedupe[message_id]
        event = next(e for e in ledger.history(account_id) if e.originator_version == version)
        assert type(event).__name__ == "EmailsRecorded"
        sent_at = utc(body["time"])
        account = ledger.get_account(account_id, version=version)
        if isinstance(account, Account):
            expected = max(Month.containing(sent_at, account.timezone), account.first_month)
            assert {entry.month for entry in event.entries} == {expected}  # type: ignore[attr-defined]
        else:
            assert [m.index for m in event.months] == [account.month_index(sent_at)]  # type: ignore[attr-defined]


def label_coverage(books: Books) -> None:
    """Which cases an example reached (``--hypothesis-show-statistics``)."""
    for account_id in ["a", "b", "c"]:
        events = list(books.ledger.history(account_id))
        names = [type(e).__name__ for e in events]
        recorded = [e for e in events if type(e).__name__ == "EmailsRecorded"]
        if any(getattr(e, "entries", None) and e.entries[0].late for e in recorded):  # type: ignore[attr-defined]
            label("late usage")
        if "PlanChanged" in names or "PlanChangeScheduled" in names:
            label("plan change")
        if (
            "Closed" in names
            and recorded
            and recorded[-1].timestamp > events[names.index("Closed")].timestamp
        ):
            label("emails recorded after closing")
        if "MonthSkipped" in names:
            label("month skipped after closing")
    if any(
        d.kind != "proforma" and any(line.kind == "volume_true_up" for line in d.lines)
        for d in books.issued
    ):
        label("volume true-up")
    months = {(a, v) for a, v in books.dedupe.values()}
    if len(months) > 3:
        label("more than three email events")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(accounts=openings, drawn=steps, cuts=st.sets(st.integers(0, 400)))
def test_documents_balances_and_usage_do_not_depend_on_the_batch_split(
    accounts: list[Opening], drawn: list[tuple[Any, ...]], cuts: set[int]
) -> None:
    facts = stream(accounts, drawn)
    # every message alone; hypothesis's cuts; only the forced ones (topic changes, closes)
    splits = [run(facts, None), run(facts, cuts), run(facts, set())]
    views = [at_rest(books) for books in splits]
    assert views[1] == views[0]
    assert views[2] == views[0]
    for books in splits:
        check_traces(books, facts)
    # and after a final close, once everything is documented
    for books in splits:
        close_all(books, FINAL_CLOSE)
    label_coverage(splits[0])
    finals = [at_rest(books) for books in splits]
    assert finals[1] == finals[0]
    assert finals[2] == finals[0]
    for books in splits:
        for account_id in ["a", "b"]:
            account = books.ledger.get_account(account_id)
            assert isinstance(account, Account)
            assert account.pending_late == ()


def test_a_volume_month_in_two_batches_shows_the_amount_its_invoice_charges() -> None:
    """The reported case: the usage of a postpaid volume month was the sum of each batch
    priced at the tier reached so far, so two runs on the same input showed different
    amounts, and neither was the invoice's."""
    panel, mta = Upstream("urn:test:panel"), Upstream("urn:test:mta")
    opened = {
        "account_id": "a",
        "plan": "vol",
        "payment_mode": "postpaid",
        "currency": "EUR",
    }
    facts: list[Fact] = [panel.event(ACCOUNTS, "account.opened", OPENED_AT, opened)]
    at = utc("2026-12-10T10:00:00Z")
    facts += [
        mta.event(
            EMAILS,
            "email.sent",
            at,
            {"account_id": "a", "message_id": f"<{n}>", "route": "platform"},
        )
        for n in range(20)
    ]
    # Vol: 3 included; tiers <= 6 at 0.0250, <= 14 at 0.0125, beyond at 0.0055. December:
    # 20 emails, 17 paid, all at the tier 20 reaches (tier 3): 17 * 0.0055 = 0.0935.
    # Before, batches 1-5 / 6-20 showed 2 * 0.0250 + 15 * 0.0055 = 0.1325, and one batch
    # 0.0935.
    for cuts in [{5}, set(), None]:
        books = run(facts, cuts)
        figures = usage_rows(books.ledger, "a")["2026-12"]["figures"]
        assert (figures.platform, figures.included, figures.charged) == (20, 3, 17)
        assert figures.amount == Decimal("0.0935")
        close_all(books, utc("2027-01-01T18:00:00Z"))
        [december] = [d for d in books.issued if str(d.period) == "2026-12"]
        usage = [line for line in december.lines if line.kind == "usage"]
        assert [(line.quantity, line.amount) for line in usage] == [
            (17, Money.of("0.09", "EUR"))  # 0.0935 -> 0.09
        ]
