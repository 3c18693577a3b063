"""Projections: batched follower, the library's ProjectionRunner, and rebuilds."""

from __future__ import annotations

from typing import Any

from eventsourcing.projection import ProjectionRunner

from ledger.application import Ledger
from ledger.entrypoints.bootstrap import Services
from ledger.money import Money
from projections.balances import BalancesProjection, BalancesView
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
}


def _history(services: Services) -> None:
    up = Upstreams(services)
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
    consumer = services.consumer()
    consumer.drain(timeout=60)
    consumer.close()
    services.close_periods(utc(2026, 11, 2, 7))
    services.pay_proforma("c", "PF-c-0001", utc(2026, 11, 2, 8))
    up.close()


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
    }
    return {table: views[owner[table]].rows(query) for table, query in TABLES.items()}


def test_rebuilt_projections_equal_the_live_ones(make_services: MakeServices) -> None:
    services = make_services()
    _history(services)
    catch_up(services)
    live = _snapshot(services)
    # Two email invoices; for "c": the opening's proforma (paid, and its invoice) and the
    # Nov 2 renewal (2 contacts left); Oct 2 - Nov 2: 20 emails, 4 x 3 = 12 allowed, 8 over.
    assert len(live["documents"]) == 5 and len(live["document_lines"]) >= 10
    assert [(r["account_id"], r["billable_contacts"]) for r in live["contact_counts"]] == [("c", 2)]
    assert [
        (r["platform_emails"], r["allowance"], r["overage_emails"], r["billed_overage_emails"])
        for r in live["allowance_usage"]
    ][:1] == [(20, 12, 8, 8)]

    services.read_models().reset()
    assert _snapshot(services)["balances"] == []
    catch_up(services)

    assert _snapshot(services) == live


def test_balance_rows_hold_credits_minus_debits(make_services: MakeServices) -> None:
    services = make_services()
    _history(services)
    catch_up(services)
    for row in _snapshot(services)["balances"]:
        assert row["balance"] == row["credited"] - row["debited"]
        account = services.ledger.get_account(row["account_id"])
        # A contacts account has no prepaid balance: its row stays at zero.
        assert row["balance"] == getattr(account, "balance", Money.zero("EUR")).amount


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
