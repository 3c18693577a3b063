"""What the payments outbox publishes for each stored event: the messages, their
topics and their stable ids (no broker: the messages are built, not sent)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from contacts_builders import GRACE, OPENED, Counter, close, open_account
from payments_builders import POLICY
from unit_builders import utc

from ledger.entrypoints.cli.render_history import event_summary
from ledger.payments.held import PaymentReport
from projections.payments_outbox import PaymentsOutbox

PF1 = "PF-acc-7-0001"


def outbox() -> PaymentsOutbox:
    return PaymentsOutbox(
        producer=None,  # type: ignore[arg-type]  # nothing is sent here
        tracking=None,  # type: ignore[arg-type]
        topic_collections="collections",
        topic_notices="notices",
        topic_account_status="status",
    )


def published(events: list[Any]) -> list[tuple[str, str, str, str]]:
    """What the outbox publishes of the events of its topics (the follower reads no other)."""
    box = outbox()
    return [
        (out.topic, out.message.type, out.message.id, out.key)  # type: ignore[attr-defined]
        for event in events
        if type(event).__name__ in ("DunningChanged", "CollectionRequested")
        for out in box.messages(event)
    ]


def test_a_request_then_a_hard_decline_publish_the_request_two_notices_and_the_suspension() -> None:
    account = open_account()
    close(account, OPENED + GRACE, Counter({OPENED: 0}))
    account.collect(OPENED + GRACE, POLICY)
    report = PaymentReport.of(
        "bridge f-1", Decimal("19.00"), "EUR", PF1, f"{PF1}/attempt-1", utc(2027, 1, 15, 17)
    )
    account.record_payment_failure(report, "card stolen", False, POLICY)
    events = account.collect_events()
    uuid = account.id
    requested = next(e for e in events if type(e).__name__ == "CollectionRequested")
    declined = events[-1]
    v1, v2 = requested.originator_version, declined.originator_version
    assert published(events) == [
        ("collections", "collection.requested", f"{uuid}:{v1}", "acc-7"),
        ("notices", "notice.opened", f"{uuid}:{v2}:0", "acc-7"),
        ("notices", "notice.opened", f"{uuid}:{v2}:1", "acc-7"),
        ("status", "account.suspended", f"{uuid}:{v2}:2", "acc-7"),
    ]
    [request] = outbox().messages(requested)
    assert request.message.model_dump(mode="json")["data"] == {
        "account_id": "acc-7",
        "request_id": f"{PF1}/attempt-1",
        "reference": PF1,
        "amount": "19.00",
        "currency": "EUR",
        "attempt": 1,
    }
    suspended = list(outbox().messages(declined))[-1].message.model_dump(mode="json")
    assert suspended["time"] == "2027-01-15T17:00:00Z"
    assert suspended["data"] == {
        "account_id": "acc-7",
        "status": "suspended",
        "reference": PF1,
        "reason": f"attempt 1 to collect 19.00 EUR for {PF1} was declined, not to be retried:"
        " card stolen",
    }


def test_ledger_history_renders_the_chase_readably() -> None:
    account = open_account()
    close(account, OPENED + GRACE, Counter({OPENED: 0}))
    account.collect(OPENED + GRACE, POLICY)
    report = PaymentReport.of(
        "bridge f-1", Decimal("19.00"), "EUR", PF1, f"{PF1}/attempt-1", utc(2027, 1, 15, 17)
    )
    account.record_payment_failure(report, "insufficient funds", True, POLICY)
    details = [
        event_summary(e)["details"]
        for e in account.collect_events()
        if type(e).__name__ in ("DunningChanged", "CollectionRequested")
    ]
    assert details == [
        f"state current; collection {PF1} attempt 1 scheduled due 2027-01-15T16:00:00+00:00",
        f"attempt 1: 19.00 EUR for {PF1} requested",
        f"state past_due; current -> past_due: attempt 1 to collect 19.00 EUR for {PF1} failed:"
        " insufficient funds; next attempt 2027-01-16 17:00:00+00:00;"
        f" notice {PF1}/payment_failed opened;"
        f" collection {PF1} attempt 2 scheduled due 2027-01-16T17:00:00+00:00",
    ]
