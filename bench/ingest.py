"""Ingest benchmark: N email.sent events over M accounts, ledger vs raw drain.

    python bench/ingest.py [--events 500000] [--accounts 1000]

Both measurements run in the same run against the same topic on the embedded
broker. Last line: ``raw=<events/s> ledger=<events/s> ratio=<ledger/raw>``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from harness import run_benchmark

from consumers.upstream_publisher import Outgoing, Upstream


def messages(events: int, accounts: int) -> tuple[list[Outgoing], list[Outgoing]]:
    panel, mta = Upstream("urn:bench:panel"), Upstream("urn:bench:mta")
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    opened = [
        panel.event(
            "billing.accounts",
            "account.opened",
            t0,
            {
                "account_id": f"acct-{i:04d}",
                "plan": "email-starter",
                "payment_mode": "postpaid",
                "currency": "EUR",
            },
        )
        for i in range(accounts)
    ]
    step = timedelta(days=28) / events
    emails = [
        mta.event(
            "billing.email-sent",
            "email.sent",
            t0 + step * i,
            {
                "account_id": f"acct-{i % accounts:04d}",
                "message_id": f"<{i}@bench>",
                "route": "platform",
            },
        )
        for i in range(events)
    ]
    return opened, emails


def main() -> None:
    run_benchmark("ingest", "billing.email-sent", messages, 500_000, 1000, __doc__ or "")


if __name__ == "__main__":
    main()
