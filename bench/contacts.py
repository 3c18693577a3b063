"""Contacts benchmark: N contact changes over M contacts accounts, ledger vs raw drain.

    python bench/contacts.py [--events 200000] [--accounts 20]

Each account's contacts are created (v1, with an email), then changed again
(v2): every fifth is deleted, the others get a phone number. Both
measurements run in the same run against the same topic on the embedded broker. Last line:
``raw=<events/s> ledger=<events/s> ratio=<ledger/raw>``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from harness import run_benchmark

from consumers.upstream_publisher import Outgoing, Upstream


def messages(events: int, accounts: int) -> tuple[list[Outgoing], list[Outgoing]]:
    panel, crm = Upstream("urn:bench:panel"), Upstream("urn:bench:crm")
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    opened = [
        panel.event(
            "billing.accounts",
            "account.opened",
            t0,
            {
                "account_id": f"crm-{i:02d}",
                "plan": "contacts-basic",
                "payment_mode": "postpaid",
                "currency": "EUR",
                "products": ["automation"],
            },
        )
        for i in range(accounts)
    ]
    per_account = events // accounts
    contacts = max(1, per_account // 2)  # two versions of each contact
    step = timedelta(days=28) / events
    changes: list[Outgoing] = []
    for i in range(events):
        account, j = i % accounts, i // accounts
        number, version = j % contacts, j // contacts + 1
        data: dict[str, object] = {
            "account_id": f"crm-{account:02d}",
            "contact_id": f"contact-{number}",
            "version": version,
        }
        kind = "contact.changed"
        if version == 1:
            data["email"] = f"c{number}@example.test"
        elif number % 5 == 0:
            kind = "contact.deleted"
        else:
            data.update(email=f"c{number}@example.test", phone=f"+3161{number:07d}")
        changes.append(crm.event("billing.contact-changed", kind, t0 + step * i, data))
    return opened, changes


def main() -> None:
    run_benchmark("contacts", "billing.contact-changed", messages, 200_000, 20, __doc__ or "")


if __name__ == "__main__":
    main()
