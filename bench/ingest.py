"""Ingest benchmark: N email.sent events over M accounts, ledger vs raw drain.

    python bench/ingest.py [--events 500000] [--accounts 1000]

Both measurements run in the same run against the same topic on the embedded
broker. Last line: ``raw=<events/s> ledger=<events/s> ratio=<ledger/raw>``.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from harness import publish_all, raw_drain, report, run_ledger_consumer, start

from consumers.publishing import Outgoing, Upstream


def messages(settings: object, events: int, accounts: int) -> tuple[list[Outgoing], list[Outgoing]]:
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
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--accounts", type=int, default=1000)
    args = parser.parse_args()
    services = start()
    try:
        opened, emails = messages(services.settings, args.events, args.accounts)
        seconds = publish_all(services, opened + emails)
        print(f"published {len(opened) + len(emails):,} messages in {seconds:.1f}s")
        raw_seconds = raw_drain(services, "billing.email-sent", len(emails))
        ledger = run_ledger_consumer(services)
        report("ingest", len(emails), raw_seconds, ledger)
    finally:
        services.stop()


if __name__ == "__main__":
    main()
