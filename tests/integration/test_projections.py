"""Projections: the read models' single pass, the library's ProjectionRunner, and rebuilds."""

from __future__ import annotations

from contextlib import nullcontext
from decimal import Decimal
from typing import Any

from eventsourcing.projection import ProjectionRunner
from eventsourcing.utils import get_topic

from consumers.process_tuning import collector_paused
from ledger.application import Ledger
from ledger.emails.account import Account
from ledger.entrypoints.bootstrap import Services
from ledger.money import Money
from projections.balances import BalancesProjection, BalancesView
from projections.usage import UsageProjection
from tests.conftest import MakeServices
from tests.support import Upstreams, catch_up, utc

TABLES = {
    "balances": "SELECT * FROM {schema}.balances ORDER BY account_id",
    "monthly_usage": "SELECT * FROM {schema}.monthly_usage ORDER BY account_uuid, month",
    "monthly_usage_tiers": "SELECT * FROM {schema}.monthly_usage_tiers ORDER BY 1, 2, 3, 4, 5",
    "documents": "SELECT * FROM {schema}.documents ORDER BY number",
    "document_lines": "SELECT * FROM {schema}.document_lines ORDER BY number, line_no",
    "contact_counts": "SELECT * FROM {schema}.contact_counts ORDER BY account_id",
    "allowance_usage": "SELECT * FROM {schema}.allowance_usage ORDER BY 1, 2",
    "owed_documents": "SELECT * FROM {schema}.owed_documents ORDER BY number",
    "unapplied_credit": "SELECT * FROM {schema}.unapplied_credit ORDER BY 1, 2",
    "payments": "SELECT * FROM {schema}.payments ORDER BY 1, 2",
    "payment_allocations": "SELECT * FROM {schema}.payment_allocations ORDER BY 1, 2, 3",
    "payment_credit": "SELECT * FROM {schema}.payment_credit ORDER BY 1, 2, 3",
    "notices": "SELECT * FROM {schema}.notices ORDER BY 1, 2",
    "dunning": "SELECT * FROM {schema}.dunning ORDER BY 1",
}


def _history(services: Services, live: bool = False) -> None:
    """Both billing models, a plan change, documents, contacts, then late emails and
    November's. ``live``: the read models follow each step in small batches, as
    ``serve`` follows a live stream."""
    up = Upstreams(services)
    read_models = services.read_models()
    read_models.batch_size = 3

    def follow() -> None:
        if live:
            read_models.catch_up()

    up.publish(
        [
            up.opened("a", utc(2026, 10, 3), payment_mode="prepaid", tax_rate="0.21"),
            up.credit("a", "30.00", utc(2026, 10, 3, 1)),
            up.opened("b", utc(2026, 10, 5), plan="email-volume"),
            *up.emails("a", 2500, utc(2026, 10, 9)),
            *up.emails("b", 9000, utc(2026, 10, 20)),
            *up.emails("a", 12, utc(2026, 10, 9), route="custom_smtp"),
            up.plan_changed("b", "email-starter", utc(2026, 10, 25)),
            *up.emails("b", 300, utc(2026, 10, 26)),
            # A contacts account: 3 billable of 4, one deleted, emails beyond the allowance.
            up.opened("c", utc(2026, 10, 2), plan="contacts-basic", products=["chat"]),
            *[up.contact("c", f"k{i}", 1, utc(2026, 10, 1), email="k@x") for i in range(3)],
            up.contact("c", "k3", 1, utc(2026, 10, 1)),
            up.contact_deleted("c", "k0", 2, utc(2026, 10, 15)),
            *up.emails("c", 20, utc(2026, 10, 20)),
        ]
    )
    consumer = services.consumer()  # one for both drains: a group member joins slowly
    consumer.drain(timeout=60)
    follow()
    services.close_periods(utc(2026, 11, 2, 7))
    follow()
    services.pay_proforma("c", "PF-c-0001", utc(2026, 11, 2, 8))
    # Late October emails (billed on November's documents) and November's first; "b"
    # pays part of its October invoice, "a" (prepaid: nothing payable) sends money
    # naming nothing, which is held, and "c" names no document of its own: the money
    # goes to its open renewal.
    up.publish(
        [
            up.payment("b", "5.00", utc(2026, 11, 3), "2026-000002"),
            up.payment("a", "1.00", utc(2026, 11, 3)),
            up.payment("c", "2.00", utc(2026, 11, 3), "X-1"),
            *up.emails("a", 40, utc(2026, 10, 31, 20)),
            *up.emails("a", 3, utc(2026, 10, 31, 21), route="custom_smtp"),
            *up.emails("b", 700, utc(2026, 10, 30)),
            *up.emails("a", 30, utc(2026, 11, 3)),
            *up.emails("c", 5, utc(2026, 11, 4)),
        ]
    )
    consumer.drain(timeout=60)
    consumer.close()
    follow()
    up.close()


def _stored(services: Services) -> list[Any]:
    return list(services.ledger.recorder.select_notifications(start=None, limit=100_000))


def _snapshot(services: Services) -> dict[str, list[dict[str, Any]]]:
    views = {p.name: p.view for p in services.projections.values()}
    owner = {
        "balances": "balances",
        "monthly_usage": "monthly_usage",
        "monthly_usage_tiers": "monthly_usage",
        "documents": "documents",
        "document_lines": "documents",
        "contact_counts": "contacts",
        "allowance_usage": "contacts",
        "owed_documents": "balances",
        "unapplied_credit": "balances",
        "payments": "payments",
        "payment_allocations": "payments",
        "payment_credit": "payments",
        "notices": "notices",
        "dunning": "notices",
    }
    return {table: views[owner[table]].rows(query) for table, query in TABLES.items()}


def test_rebuilt_projections_equal_the_live_ones(make_services: MakeServices) -> None:
    services = make_services()
    _history(services, live=True)
    catch_up(services)
    live = _snapshot(services)
    # Two email invoices; for "c": the opening's proforma (paid, and its invoice) and the
    # Nov 2 renewal (2 contacts left); Oct 2 - Nov 2: 20 emails, 4 x 3 = 12 allowed, 8 over.
    assert len(live["documents"]) == 5 and len(live["document_lines"]) >= 10
    # What payments did: b's October invoice 5.00 paid, c's renewal 2.00, a's 1.00 held.
    paid = {(r["number"], r["status"], r["paid"]) for r in live["documents"] if r["paid"]}
    assert ("2026-000002", "partially_paid", Decimal("5.00")) in paid
    assert ("PF-c-0002", "partially_paid", Decimal("2.00")) in paid
    assert [(r["amount"], r["reason"]) for r in live["unapplied_credit"]] == [
        (Decimal("1.00"), "no_reference")
    ]
    # The payments read model: c's mark-paid of its first proforma (tier 1 19.00 + chat
    # 10.00), the three payments; a's held.
    kinds = sorted((r["kind"], r["amount"], r["applied"]) for r in live["payments"])
    assert kinds == [
        ("mark_paid", Decimal("29.00"), Decimal("29.00")),
        ("succeeded", Decimal("1.00"), Decimal("0")),
        ("succeeded", Decimal("2.00"), Decimal("2.00")),
        ("succeeded", Decimal("5.00"), Decimal("5.00")),
    ]
    assert [(r["currency"], r["reason"], r["amount"]) for r in live["payment_credit"]] == [
        ("EUR", "no_reference", Decimal("1.00"))
    ]
    assert [(r["account_id"], r["billable_contacts"]) for r in live["contact_counts"]] == [("c", 2)]
    assert [
        (r["platform_emails"], r["allowance"], r["overage_emails"], r["billed_overage_emails"])
        for r in live["allowance_usage"]
    ][:1] == [(20, 12, 8, 8)]

    # The late emails: 40 on "a"'s October row (and 3 custom SMTP), 700 on "b"'s.
    late = {(r["month"], r["late_emails"]) for r in live["monthly_usage"] if r["late_emails"]}
    assert late == {("2026-10", 40), ("2026-10", 700)}

    read_models = services.read_models()
    read_models.reset()
    assert _snapshot(services)["balances"] == []
    assert read_models.rebuild() == len(_stored(services))

    assert _snapshot(services) == live


def test_a_batch_writes_what_its_events_write_one_at_a_time(make_services: MakeServices) -> None:
    """Folded per key, a batch of any size writes the rows its events write one by one."""
    services = make_services()
    _history(services)
    read_models = services.read_models()
    read_models.rebuild(batch_size=1)
    one_by_one = _snapshot(services)
    read_models.rebuild(batch_size=10_000)
    assert _snapshot(services) == one_by_one


def test_each_stored_event_is_decoded_once_and_only_if_a_read_model_reads_it(
    make_services: MakeServices,
) -> None:
    services = make_services()
    _history(services)
    read_models = services.read_models()
    decoded: list[str] = []
    decode = services.ledger.mapper.to_domain_event

    def counting(notification: Any) -> Any:
        decoded.append(notification.topic)
        return decode(notification)

    services.ledger.mapper.to_domain_event = counting  # type: ignore[method-assign]
    read_models.rebuild()
    stored = _stored(services)
    read = [n.topic for n in stored if read_models.readers(n.topic)]
    assert decoded == read
    # The numbering sequence's events are read by no read model: never decoded.
    assert len(read) < len(stored)
    by_name = {p.name: i for i, p in enumerate(read_models.projections)}
    emails = read_models.readers(get_topic(Account.EmailsRecorded))
    assert sorted(emails) == sorted([by_name["balances"], by_name["monthly_usage"]])


def test_each_read_model_keeps_its_own_position(make_services: MakeServices) -> None:
    services = make_services()
    _history(services)
    read_models = services.read_models()
    read_models.catch_up()
    stored = len(_stored(services))  # not the last id: a sequence may skip ids
    live = _snapshot(services)
    services.projection(UsageProjection).view.reset()
    assert read_models.behind_by_name() == {
        "balances": 0,
        "monthly_usage": stored,
        "documents": 0,
        "contacts": 0,
        "payments": 0,
        "notices": 0,
    }
    again = services.read_models()
    again.catch_up()
    assert again.applied == {
        "balances": 0,
        "monthly_usage": stored,
        "documents": 0,
        "contacts": 0,
        "payments": 0,
        "notices": 0,
    }
    assert _snapshot(services) == live


def test_balance_rows_hold_credits_minus_debits(make_services: MakeServices) -> None:
    services = make_services()
    _history(services)
    catch_up(services)
    for row in _snapshot(services)["balances"]:
        assert row["balance"] == row["credited"] - row["debited"]
        # The consumer billed the late emails through its own Ledger: not this one's cache.
        services.ledger.evict([row["account_uuid"]])
        account = services.ledger.get_account(row["account_id"])
        # A contacts account has no prepaid balance: its row stays at zero.
        assert row["balance"] == getattr(account, "balance", Money.zero("EUR")).amount
        assert row["amount_owed"] == account.amount_owed.amount
        assert row["unapplied_credit"] == account.unapplied_credit.amount


def test_the_library_projection_runner_builds_the_same_rows(make_services: MakeServices) -> None:
    """Our batched follower is an optimisation of eventsourcing's ProjectionRunner, not a fork."""
    services = make_services()
    _history(services)
    head = services.ledger.recorder.max_notification_id()
    with ProjectionRunner(
        application_class=Ledger,
        projection_class=BalancesProjection,
        view_class=BalancesView,
        env=services.env,
    ) as runner:
        runner.wait(head, timeout=30)
        by_library = runner.view.rows(TABLES["balances"])  # type: ignore[attr-defined]
    assert len(by_library) == 3

    balances = services.projection(BalancesProjection).view
    balances.reset()
    services.read_models().catch_up()
    assert balances.rows(TABLES["balances"]) == by_library


def test_the_read_models_pause_the_collector_for_a_batch_only_where_no_consumer_runs(
    make_services: MakeServices,
) -> None:
    services = make_services()
    assert services.read_models().batch_scope is nullcontext
    assert services.read_models(sole_work=True).batch_scope is collector_paused
