"""Money chased through the real broker and PostgreSQL: collection requests, retries,
notices, suspension and reinstatement, each published once from stored history.

Worked out by hand. Two contacts-basic accounts, "card" and "hard", opened
2026-10-15 10:00Z (no billable contact, tax 0): their first proforma is 19.00
EUR, issued at the close of 16:00Z, collectable from 10:00Z. The policy retries
1, 3, 5 and 7 days after the first failure, at its clock time. A postpay
email-starter account "late" opened 2026-09-05 (tax 0): September's invoice
2026-000001 (the fee, 10.00) is issued at the close of 2026-10-01 07:00, due
2026-10-15, overdue from 2026-10-16 00:00Z, suspending 14 days later, on
2026-10-30 00:00Z. Time is driven through the scheduler's ``now``, not by sleeping.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

from consumers.upstream_publisher import Outgoing
from tests.conftest import MakeServices
from tests.support import Upstreams, catch_up, ledger_command, ledger_env, read_topic, utc

CARD, HARD = "PF-card-0001", "PF-hard-0001"
PLANS = Path(__file__).resolve().parents[2] / "plans"


def test_collections_notices_and_suspensions_are_published_once(
    make_services: MakeServices,
) -> None:
    services = make_services()
    settings = services.settings
    up = Upstreams(services)
    consumer = services.consumer()

    def deliver(messages: list[Outgoing]) -> None:
        up.publish(messages)
        consumer.drain(timeout=60)

    def requests(at: Any) -> list[tuple[str, str, str, int]]:
        return [
            (account, r.request_id, str(r.amount.amount), r.attempt)
            for account, r in services.collect(at).requests
        ]

    try:
        deliver(
            [
                up.opened("late", utc(2026, 9, 5)),
                up.opened("card", utc(2026, 10, 15, 10), plan="contacts-basic"),
                up.opened("hard", utc(2026, 10, 15, 10), plan="contacts-basic"),
            ]
        )
        [september] = services.close_periods(utc(2026, 10, 1, 7))
        assert (september.number, str(september.total.amount)) == ("2026-000001", "10.00")
        proformas = services.close_periods(utc(2026, 10, 15, 16))
        assert sorted((p.number, str(p.total.amount)) for p in proformas) == [
            (CARD, "19.00"),
            (HARD, "19.00"),
        ]
        # attempt 1 of each proforma, requested once
        assert sorted(requests(utc(2026, 10, 15, 16))) == [
            ("card", f"{CARD}/attempt-1", "19.00", 1),
            ("hard", f"{HARD}/attempt-1", "19.00", 1),
        ]
        assert requests(utc(2026, 10, 15, 16)) == []
        deliver(
            [
                up.payment_failed(
                    "card",
                    "19.00",
                    utc(2026, 10, 15, 17),
                    CARD,
                    "insufficient funds",
                    request_id=f"{CARD}/attempt-1",
                ),
                up.payment_failed(
                    "hard",
                    "19.00",
                    utc(2026, 10, 15, 17),
                    HARD,
                    "card stolen",
                    request_id=f"{HARD}/attempt-1",
                    retryable=False,
                ),
            ]
        )
        # the retry is due a day after the failure; "late" became overdue at midnight
        assert requests(utc(2026, 10, 16, 16, 59)) == []
        assert requests(utc(2026, 10, 16, 17)) == [("card", f"{CARD}/attempt-2", "19.00", 2)]
        # a scheduler restarted (a process of its own) requests nothing again
        restarted = make_services()
        again = restarted.collect(utc(2026, 10, 16, 17))
        assert (again.requests, again.events) == ([], 0)
        deliver(
            [
                up.payment(
                    "card", "19.00", utc(2026, 10, 16, 18), CARD, request_id=f"{CARD}/attempt-2"
                ),
                # attempt 1's answer once more, after attempt 2 paid: it reopens nothing
                up.payment_failed(
                    "card",
                    "19.00",
                    utc(2026, 10, 16, 19),
                    CARD,
                    "insufficient funds",
                    request_id=f"{CARD}/attempt-1",
                ),
            ]
        )
        assert requests(utc(2026, 10, 30)) == []  # "late" suspended: no request, a fact
        deliver([up.payment("late", "10.00", utc(2026, 10, 31, 9), "2026-000001")])
    finally:
        consumer.close()
        up.close()

    services.payments_outbox().catch_up()
    services.status_publisher().catch_up()
    collections = read_topic(services, settings.topic_collections, expected=3)
    assert sorted(
        (
            m["data"]["account_id"],
            m["data"]["request_id"],
            m["data"]["amount"],
            m["data"]["attempt"],
        )
        for m in collections
    ) == [
        ("card", f"{CARD}/attempt-1", "19.00", 1),
        ("card", f"{CARD}/attempt-2", "19.00", 2),
        ("hard", f"{HARD}/attempt-1", "19.00", 1),
    ]
    assert {(m["type"], m["data"]["currency"], m["data"]["reference"]) for m in collections} == {
        ("collection.requested", "EUR", CARD),
        ("collection.requested", "EUR", HARD),
    }
    notices = read_topic(services, settings.topic_notices, expected=8)
    by_account: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for m in notices:
        d = m["data"]
        by_account[d["account_id"]].append(
            (m["type"], d["notice_id"], d["amount_due"], d["attempt"], d["next_attempt_at"])
        )
    assert dict(by_account) == {
        "card": [
            ("notice.opened", f"{CARD}/payment_failed", "19.00", 1, "2026-10-16T17:00:00Z"),
            ("notice.resolved", f"{CARD}/payment_failed", "19.00", 1, "2026-10-16T17:00:00Z"),
        ],
        "hard": [
            ("notice.opened", f"{HARD}/payment_failed", "19.00", 1, None),
            ("notice.opened", f"{HARD}/suspended", "19.00", 1, None),
        ],
        "late": [
            ("notice.opened", "2026-000001/overdue", "10.00", None, None),
            ("notice.opened", "2026-000001/suspended", "10.00", None, None),
            ("notice.resolved", "2026-000001/overdue", "10.00", None, None),
            ("notice.resolved", "2026-000001/suspended", "10.00", None, None),
        ],
    }
    late_opened = [m for m in notices if m["data"]["notice_id"] == "2026-000001/overdue"]
    assert [m["data"]["opened_at"] for m in late_opened] == ["2026-10-16T00:00:00Z"] * 2
    status = read_topic(services, settings.topic_account_status, expected=5)
    assert sorted((m["data"]["account_id"], m["type"], m["time"]) for m in status) == [
        ("hard", "account.suspended", "2026-10-15T17:00:00Z"),
        ("late", "account.reinstated", "2026-10-31T09:00:00Z"),
        ("late", "account.sending-blocked", "2026-10-30T00:00:00Z"),
        ("late", "account.sending-unblocked", "2026-10-31T09:00:00Z"),
        ("late", "account.suspended", "2026-10-30T00:00:00Z"),
    ]
    # exactly once: every id distinct, and an outbox restarted publishes nothing again
    published = [*collections, *notices, *status]
    assert len({m["id"] for m in published}) == len(published) == 16
    restarted.payments_outbox().catch_up()
    assert len(read_topic(services, settings.topic_notices)) == 8
    assert len(read_topic(services, settings.topic_collections)) == 3
    catch_up(services)


def test_ledger_collect_requests_what_is_due_and_serve_refuses_without_a_policy(
    make_services: MakeServices, tmp_path: Path
) -> None:
    services = make_services()
    up = Upstreams(services)
    consumer = services.consumer()
    try:
        up.publish([up.opened("card", utc(2026, 10, 15, 10), plan="contacts-basic")])
        consumer.drain(timeout=60)
    finally:
        consumer.close()
        up.close()
    services.close_periods(utc(2026, 10, 15, 16))
    env = ledger_env(services.settings)
    result = ledger_command("collect", "--as-of", "2026-10-15T16:00:00Z", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "accounts": 1,
        "events": 1,
        "requests": [
            {
                "account_id": "card",
                "request_id": f"{CARD}/attempt-1",
                "reference": CARD,
                "amount": "19.00",
                "currency": "EUR",
                "attempt": 1,
            }
        ],
    }
    again = ledger_command("collect", "--as-of", "2026-10-15T16:00:00Z", env=env)
    assert (
        again.stdout.strip() == "0 account(s) visited, 0 collection request(s), 0 event(s) recorded"
    )
    # a catalogue without [dunning]: serve's scheduler and consumer refuse to start
    plans = tmp_path / "plans"
    plans.mkdir()
    for source in PLANS.glob("*.toml"):
        if source.name != "dunning.toml":
            shutil.copy(source, plans / source.name)
    refused = ledger_command(
        "serve", "--role", "scheduler", env={**env, "LEDGER_PLANS_DIR": str(plans)}
    )
    assert refused.returncode != 0
    assert "Traceback" not in refused.stderr
    [line] = [text for text in refused.stderr.splitlines() if "[dunning]" in text]
    assert line.endswith(
        "has no [dunning] policy: payments cannot be scheduled (add plans/dunning.toml)"
    )
