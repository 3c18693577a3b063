"""The demo's scenario: the upstream systems, the accounts and their two months
of facts (October and November), generated from one seed so every run
publishes the same stream."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from consumers.upstream_publisher import Outgoing, Upstream, raw
from ledger.entrypoints.settings import Settings

MTA = Upstream("urn:demo:mta")
PANEL = Upstream("urn:demo:customer-panel")
CRM = Upstream("urn:demo:contacts-db")
SEED = 20261122


def _emails(
    rng: random.Random,
    topic: str,
    account: str,
    count: int,
    start: datetime,
    end: datetime,
    smtp_share: float = 0.0,
) -> list[tuple[datetime, Outgoing]]:
    span = (end - start).total_seconds()
    out = []
    for _ in range(count):
        at = start + timedelta(seconds=rng.random() * span)
        route = "custom_smtp" if rng.random() < smtp_share else "platform"
        message_id = f"<{rng.getrandbits(64):016x}@{account}.example>"
        out.append(
            (
                at,
                MTA.event(
                    topic,
                    "email.sent",
                    at,
                    {"account_id": account, "message_id": message_id, "route": route},
                ),
            )
        )
    return out


def _in_order(items: list[tuple[datetime, Outgoing]]) -> list[Outgoing]:
    return [message for _, message in sorted(items, key=lambda pair: pair[0])]


def when(text: str) -> datetime:
    return (
        datetime.fromisoformat(text).replace(tzinfo=UTC)
        if "+" not in text
        else datetime.fromisoformat(text)
    )


class Scenario:
    def __init__(self, settings: Settings) -> None:
        self.accounts = settings.topic_accounts
        self.emails = settings.topic_email_sent
        self.contacts = settings.topic_contact_changed
        self.rng = random.Random(SEED)

    def _contact(
        self, at: datetime, number: int, version: int, **fields: object
    ) -> tuple[datetime, Outgoing]:
        data = {"account_id": "northwind", "contact_id": f"nw-{number}", "version": version}
        kind = "contact.deleted" if fields.pop("deleted", False) else "contact.changed"
        return at, CRM.event(self.contacts, kind, at, {**data, **fields})

    def northwind_october(self) -> list[tuple[datetime, Outgoing]]:
        """Opens Oct 15 on contacts-basic + automation + chat; 800 contacts from the
        trial, 300 more on Oct 20, 50 without any identifier (not billable)."""
        rng, c = self.rng, self._contact
        items = [
            self._account(
                "account.opened",
                when("2026-10-15T09:00"),
                {
                    "account_id": "northwind",
                    "plan": "contacts-basic",
                    "payment_mode": "postpaid",
                    "currency": "EUR",
                    "tax_rate": "0.21",
                    "timezone": "Europe/Amsterdam",
                    "products": ["automation", "chat"],
                },
            )
        ]
        items += [c(when("2026-10-10T12:00"), n, 1, email=f"p{n}@nw.example") for n in range(800)]
        items += [
            c(when("2026-10-20T12:00"), n, 1, phone=f"+3161{n:06d}") for n in range(800, 1100)
        ]
        items += [c(when("2026-10-21T12:00"), n, 1) for n in range(1100, 1150)]
        items += _emails(
            rng,
            self.emails,
            "northwind",
            2_000,
            when("2026-10-15T10:00"),
            when("2026-10-31T20:00"),
        )
        return items

    def northwind_november(self) -> list[tuple[datetime, Outgoing]]:
        """100 contacts deleted, 20 of the unidentified ones reply in chat, a stale
        re-send; emails beyond the allowance of 4 x 800 by the Nov 15 renewal."""
        rng, c = self.rng, self._contact
        items = [c(when("2026-11-05T08:00"), n, 2, deleted=True) for n in range(100)]
        items += [c(when("2026-11-06T08:00"), n, 2, chat_replied=True) for n in range(1100, 1120)]
        items.append(c(when("2026-11-07T08:00"), 7, 1, email="stale@nw.example"))  # v1 < v2
        items += _emails(
            rng,
            self.emails,
            "northwind",
            1_700,
            when("2026-11-01T10:00"),
            when("2026-11-14T20:00"),
            smtp_share=0.05,
        )
        return items

    def _account(
        self, event_type: str, at: datetime, data: dict[str, object]
    ) -> tuple[datetime, Outgoing]:
        return at, PANEL.event(self.accounts, event_type, at, data)

    def october(self) -> list[Outgoing]:
        rng, a = self.rng, self._account
        items = [
            a(
                "account.opened",
                when("2026-10-01T08:00"),
                {
                    "account_id": "initech",
                    "plan": "email-volume",
                    "payment_mode": "postpaid",
                    "currency": "EUR",
                },
            ),
            a(
                "account.opened",
                when("2026-10-05T09:30"),
                {
                    "account_id": "hooli",
                    "plan": "email-starter",
                    "payment_mode": "postpaid",
                    "currency": "EUR",
                    "tax_rate": "0.08",
                    "timezone": "America/New_York",
                },
            ),
            a(
                "account.opened",
                when("2026-10-20T10:00"),
                {
                    "account_id": "acme",
                    "plan": "email-starter",
                    "payment_mode": "prepaid",
                    "currency": "EUR",
                    "tax_rate": "0.21",
                    "timezone": "Europe/Amsterdam",
                },
            ),
            a(
                "account.credit-purchased",
                when("2026-10-20T10:05"),
                {"account_id": "acme", "amount": "40.00", "reference": "TOPUP-1001"},
            ),
            a(
                "account.opened",
                when("2026-10-25T14:00"),
                {
                    "account_id": "globex",
                    "plan": "email-starter",
                    "payment_mode": "prepaid",
                    "currency": "EUR",
                    "tax_rate": "0.21",
                },
            ),
            a(
                "account.credit-purchased",
                when("2026-10-25T14:01"),
                {"account_id": "globex", "amount": "30.00", "reference": "TOPUP-1002"},
            ),
            a(
                "account.opened",
                when("2026-10-28T09:00"),
                {
                    "account_id": "wonka",
                    "plan": "email-platinum",
                    "payment_mode": "prepaid",
                    "currency": "EUR",
                },
            ),
        ]
        items += _emails(
            rng,
            self.emails,
            "initech",
            18_000,
            when("2026-10-01T09:00"),
            when("2026-10-31T23:00"),
        )
        items += _emails(
            rng,
            self.emails,
            "hooli",
            6_000,
            when("2026-10-05T10:00"),
            when("2026-10-31T20:00"),
        )
        # 23:59 in New York on Oct 31 is Nov 1 in UTC: still October for hooli.
        items += _emails(
            rng,
            self.emails,
            "hooli",
            25,
            when("2026-11-01T03:59:00+00:00"),
            when("2026-11-01T03:59:59+00:00"),
        )
        items += _emails(
            rng,
            self.emails,
            "acme",
            3_000,
            when("2026-10-20T11:00"),
            when("2026-10-31T22:00"),
        )
        items += _emails(
            rng,
            self.emails,
            "globex",
            1_500,
            when("2026-10-25T15:00"),
            when("2026-10-31T23:00"),
        )
        items += self.northwind_october()
        return _in_order(items)

    def november_first_half(self) -> list[Outgoing]:
        rng, a = self.rng, self._account
        start, mid = when("2026-11-01T12:00"), when("2026-11-15T12:00")
        items = [
            a(
                "account.opened",
                when("2026-11-03T08:00"),
                {
                    "account_id": "umbrella",
                    "plan": "email-usd",
                    "payment_mode": "prepaid",
                    "currency": "USD",
                    "timezone": "America/Chicago",
                },
            ),
            a(
                "account.credit-purchased",
                when("2026-11-03T08:02"),
                {"account_id": "umbrella", "amount": "100.00", "reference": "TOPUP-1003"},
            ),
            a("account.plan-changed", mid, {"account_id": "hooli", "plan": "email-volume"}),
        ]
        items += _emails(rng, self.emails, "initech", 30_000, start, mid, smtp_share=0.03)
        items += _emails(rng, self.emails, "hooli", 15_000, start, mid)
        items += _emails(rng, self.emails, "acme", 14_000, start, mid, smtp_share=0.02)
        items += _emails(rng, self.emails, "globex", 9_000, start, mid)
        items += _emails(rng, self.emails, "umbrella", 5_000, when("2026-11-03T09:00"), mid)
        # The MTA was down for a while: October mail reported only now (late usage).
        items += _emails(
            rng, self.emails, "acme", 30, when("2026-10-30T08:00"), when("2026-10-30T09:00")
        )
        items += self.northwind_november()
        return _in_order(items)

    def november_second_half(self) -> tuple[list[Outgoing], list[Outgoing]]:
        rng, a = self.rng, self._account
        mid, end = when("2026-11-16T09:00"), when("2026-11-30T22:00")
        items = [
            a(
                "account.credit-purchased",
                mid,
                {"account_id": "globex", "amount": "25.00", "reference": "TOPUP-1004"},
            )
        ]
        items += _emails(rng, self.emails, "initech", 35_000, mid, end, smtp_share=0.03)
        items += _emails(rng, self.emails, "hooli", 25_000, mid, end)
        items += _emails(rng, self.emails, "acme", 14_000, mid, end, smtp_share=0.02)
        items += _emails(rng, self.emails, "globex", 4_000, mid + timedelta(minutes=5), end)
        items += _emails(rng, self.emails, "umbrella", 7_000, mid, end)
        messages = _in_order(items)
        # Upstream retries: the same CloudEvents again at later offsets.
        duplicates = rng.sample([m for m in messages if m.topic == self.emails], 60)
        duplicates.append(next(m for m in messages if m.topic == self.accounts))
        bad = [
            raw(self.emails, "acme", b'{"specversion": "1.0", "id": '),
            MTA.event(self.emails, "email.sent", end, {"account_id": "acme", "route": "platform"}),
            MTA.event(
                self.emails,
                "email.sent",
                end,
                {"account_id": "acme", "message_id": "<x@acme>", "route": "smtp-relay"},
            ),
            MTA.event(
                self.emails,
                "email.sent",
                end,
                {"account_id": "ghost-corp", "message_id": "<y@ghost>", "route": "platform"},
            ),
            raw(
                self.accounts,
                "acme",
                json.dumps(
                    {
                        "specversion": "1.0",
                        "id": "p-9",
                        "source": "urn:demo:customer-panel",
                        "type": "account.credit-purchased",
                        "time": "2026-11-20T10:00:00Z",
                        "data": {"account_id": "acme", "amount": 10.5},
                    }
                ).encode(),
            ),
        ]
        return messages, duplicates + bad


BRIDGE = Upstream("urn:demo:payment-bridge")


class Payments:
    """The payment bridge's answers: what the demo's customers pay, and when.

    Card payments answer the ledger's collection requests (``request_id`` is the
    ledger's own: ``<proforma>/attempt-<n>``); transfers name their document."""

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.topic_payments

    def succeeded(
        self,
        account: str,
        amount: str,
        at: datetime,
        reference: str,
        request_id: str | None = None,
    ) -> Outgoing:
        data = {"account_id": account, "amount": amount, "currency": "EUR", "reference": reference}
        if request_id is not None:
            data["request_id"] = request_id
        return BRIDGE.event(self.topic, "payment.succeeded", at, data)

    def failed(
        self,
        account: str,
        amount: str,
        at: datetime,
        reference: str,
        attempt: int,
        reason: str,
        *,
        retryable: bool = True,
    ) -> Outgoing:
        data = {
            "account_id": account,
            "amount": amount,
            "currency": "EUR",
            "reference": reference,
            "request_id": f"{reference}/attempt-{attempt}",
            "reason": reason,
            "retryable": retryable,
        }
        return BRIDGE.event(self.topic, "payment.failed", at, data)
