"""``ledger demo``: two generated months of an email API's customers, end to end.

Embedded PostgreSQL and Kafka, the real consumer, projections, closer and
status publisher. Six email accounts: prepaid and postpaid, graduated and
volume tiers, three time zones, EUR and USD, one prepaid account that runs
out of credit mid-month and tops up, one plan change, late usage, duplicates
and malformed messages. Next to them, one contacts-billed account
(``northwind``, seed 002): contacts imported, changed, deleted and re-sent,
a subscription renewed on its anniversary (the 15th), emails beyond its
allowance, proformas paid into numbered invoices. Time is simulated: the demo
publishes October, closes it, publishes November in two halves, closes
November and prints the books.
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from kafka import KafkaConsumer, TopicPartition
from rich.console import Console

from consumers.runner import LedgerConsumer
from consumers.upstream_publisher import Outgoing, Upstream, producer, publish, raw
from ledger.documents import Document
from ledger.entrypoints.bootstrap import Services, bootstrap
from ledger.entrypoints.cli import render
from ledger.entrypoints.embedded import stop_postgres
from ledger.entrypoints.settings import PROJECT_ROOT, Settings
from ledger.opening import account_uuid

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


def _d(text: str) -> datetime:
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
                _d("2026-10-15T09:00"),
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
        items += [c(_d("2026-10-10T12:00"), n, 1, email=f"p{n}@nw.example") for n in range(800)]
        items += [c(_d("2026-10-20T12:00"), n, 1, phone=f"+3161{n:06d}") for n in range(800, 1100)]
        items += [c(_d("2026-10-21T12:00"), n, 1) for n in range(1100, 1150)]
        items += _emails(
            rng, self.emails, "northwind", 2_000, _d("2026-10-15T10:00"), _d("2026-10-31T20:00")
        )
        return items

    def northwind_november(self) -> list[tuple[datetime, Outgoing]]:
        """100 contacts deleted, 20 of the unidentified ones reply in chat, a stale
        re-send; emails beyond the allowance of 4 x 800 by the Nov 15 renewal."""
        rng, c = self.rng, self._contact
        items = [c(_d("2026-11-05T08:00"), n, 2, deleted=True) for n in range(100)]
        items += [c(_d("2026-11-06T08:00"), n, 2, chat_replied=True) for n in range(1100, 1120)]
        items.append(c(_d("2026-11-07T08:00"), 7, 1, email="stale@nw.example"))  # v1 < v2
        items += _emails(
            rng,
            self.emails,
            "northwind",
            1_700,
            _d("2026-11-01T10:00"),
            _d("2026-11-14T20:00"),
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
                _d("2026-10-01T08:00"),
                {
                    "account_id": "initech",
                    "plan": "email-volume",
                    "payment_mode": "postpaid",
                    "currency": "EUR",
                },
            ),
            a(
                "account.opened",
                _d("2026-10-05T09:30"),
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
                _d("2026-10-20T10:00"),
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
                _d("2026-10-20T10:05"),
                {"account_id": "acme", "amount": "40.00", "reference": "TOPUP-1001"},
            ),
            a(
                "account.opened",
                _d("2026-10-25T14:00"),
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
                _d("2026-10-25T14:01"),
                {"account_id": "globex", "amount": "30.00", "reference": "TOPUP-1002"},
            ),
            a(
                "account.opened",
                _d("2026-10-28T09:00"),
                {
                    "account_id": "wonka",
                    "plan": "email-platinum",
                    "payment_mode": "prepaid",
                    "currency": "EUR",
                },
            ),
        ]
        items += _emails(
            rng, self.emails, "initech", 18_000, _d("2026-10-01T09:00"), _d("2026-10-31T23:00")
        )
        items += _emails(
            rng, self.emails, "hooli", 6_000, _d("2026-10-05T10:00"), _d("2026-10-31T20:00")
        )
        # 23:59 in New York on Oct 31 is Nov 1 in UTC: still October for hooli.
        items += _emails(
            rng,
            self.emails,
            "hooli",
            25,
            _d("2026-11-01T03:59:00+00:00"),
            _d("2026-11-01T03:59:59+00:00"),
        )
        items += _emails(
            rng, self.emails, "acme", 3_000, _d("2026-10-20T11:00"), _d("2026-10-31T22:00")
        )
        items += _emails(
            rng, self.emails, "globex", 1_500, _d("2026-10-25T15:00"), _d("2026-10-31T23:00")
        )
        items += self.northwind_october()
        return _in_order(items)

    def november_first_half(self) -> list[Outgoing]:
        rng, a = self.rng, self._account
        start, mid = _d("2026-11-01T12:00"), _d("2026-11-15T12:00")
        items = [
            a(
                "account.opened",
                _d("2026-11-03T08:00"),
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
                _d("2026-11-03T08:02"),
                {"account_id": "umbrella", "amount": "100.00", "reference": "TOPUP-1003"},
            ),
            a("account.plan-changed", mid, {"account_id": "hooli", "plan": "email-volume"}),
        ]
        items += _emails(rng, self.emails, "initech", 30_000, start, mid, smtp_share=0.03)
        items += _emails(rng, self.emails, "hooli", 15_000, start, mid)
        items += _emails(rng, self.emails, "acme", 14_000, start, mid, smtp_share=0.02)
        items += _emails(rng, self.emails, "globex", 9_000, start, mid)
        items += _emails(rng, self.emails, "umbrella", 5_000, _d("2026-11-03T09:00"), mid)
        # The MTA was down for a while: October mail reported only now (late usage).
        items += _emails(
            rng, self.emails, "acme", 30, _d("2026-10-30T08:00"), _d("2026-10-30T09:00")
        )
        items += self.northwind_november()
        return _in_order(items)

    def november_second_half(self) -> tuple[list[Outgoing], list[Outgoing]]:
        rng, a = self.rng, self._account
        mid, end = _d("2026-11-16T09:00"), _d("2026-11-30T22:00")
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


def _reset_schema(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")


def _status_messages(svc: Services) -> list[dict[str, object]]:
    consumer = KafkaConsumer(**svc.kafka_config, enable_auto_commit=False)
    topic = svc.settings.topic_account_status
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    ends = consumer.end_offsets(partitions)
    messages: list[dict[str, object]] = []
    deadline = time.monotonic() + 10
    while (
        any(consumer.position(tp) < ends[tp] for tp in partitions) and time.monotonic() < deadline
    ):
        for records in consumer.poll(timeout_ms=200).values():
            messages.extend(json.loads(r.value) for r in records)
    consumer.close()
    return sorted(messages, key=lambda m: str(m["time"]))


def run_demo(out: Console, err: Console, home: Path | None = None) -> None:
    started = time.perf_counter()
    settings = Settings(
        database_url=None,
        kafka_bootstrap=None,
        home=home or PROJECT_ROOT / ".ledger" / "demo",
        topic_partitions=4,
    )
    # The demo's "now" (the parking bound is measured against it): after November.
    svc = bootstrap(
        settings,
        clock=lambda: _d("2026-12-01T12:00"),
        announce=lambda m: err.print(f"[dim]{m}[/dim]"),
    )
    try:
        _run(svc, settings, out, err)
    finally:
        svc.close()
        # Commands leave the embedded PostgreSQL running for the next one; the demo
        # is the last one: no server left behind (the next command starts it again).
        stop_postgres(settings.home / "pg")
    err.print(f"[bold]demo finished in {time.perf_counter() - started:.1f}s[/bold]")
    err.print(
        "Explore the same books: "
        f"LEDGER_HOME={settings.home} .venv/bin/ledger invoices acme | invoice NUMBER | usage hooli"
        " | history globex | contacts northwind --as-of 2026-11-15T00:00+01:00"
    )


def _wrote(consumer: LedgerConsumer, documents: list[Document]) -> list[Document]:
    """The closer saved new versions of these accounts through another Ledger: the
    consumer's cache must not offer the old ones to its next batch, which would then
    collide with them and be redone (the consumer owns its partitions' accounts and
    caches them without re-reading them; in ``serve`` the same race is handled by
    the redo, at the price of one batch done twice)."""
    consumer.ledger.evict([account_uuid(d.account_id) for d in documents])
    return documents


def _run(svc: Services, settings: Settings, out: Console, err: Console) -> None:
    svc.ledger.close()
    _reset_schema(svc.database_url)
    from ledger.application import Ledger

    svc.ledger = Ledger(env=svc.env)
    svc.ensure_topics()
    scenario = Scenario(settings)
    kafka = producer(svc.kafka_config)
    consumer = svc.consumer()
    summary = {"published": 0, "applied": 0, "duplicates": 0, "dead_letters": 0, "parked": 0}

    def consume() -> None:
        for outcome in consumer.drain(timeout=90):
            for name in ("applied", "duplicates", "dead_letters", "parked"):
                summary[name] += getattr(outcome, name)

    def phase(title: str, messages: list[Outgoing]) -> None:
        t0 = time.perf_counter()
        summary["published"] += publish(kafka, messages)
        t1 = time.perf_counter()
        consume()
        t2 = time.perf_counter()
        err.print(
            f"[bold cyan]>[/bold cyan] {title}: published {len(messages):,} in {t1 - t0:.1f}s, "
            f"billed in {t2 - t1:.1f}s"
        )

    phase("October", scenario.october())
    docs = _wrote(consumer, svc.close_periods(_d("2026-11-01T12:00")))
    err.print(
        f"[bold cyan]>[/bold cyan] closed October as of 2026-11-01T12:00Z: {len(docs)} documents"
    )
    # northwind's first proforma (priced at the opening) is paid by card: its invoice
    # takes the next number after October's email invoices.
    [paid] = _wrote(
        consumer, [svc.pay_proforma("northwind", "PF-northwind-0001", _d("2026-11-01T13:00"))]
    )
    err.print(f"[bold cyan]>[/bold cyan] northwind paid PF-northwind-0001: invoice {paid.number}")
    phase("November 1-15", scenario.november_first_half())
    second, noise = scenario.november_second_half()
    phase("November 16-30 (+ duplicates and malformed messages)", second + noise)
    docs = _wrote(consumer, svc.close_periods(_d("2026-12-01T12:00")))
    err.print(
        f"[bold cyan]>[/bold cyan] closed November as of 2026-12-01T12:00Z: {len(docs)} documents"
    )
    [paid] = _wrote(
        consumer, [svc.pay_proforma("northwind", "PF-northwind-0002", _d("2026-12-01T13:00"))]
    )
    err.print(f"[bold cyan]>[/bold cyan] northwind paid PF-northwind-0002: invoice {paid.number}")
    consumer.close()
    for follower in svc.followers():
        follower.catch_up()
    svc.status_publisher().catch_up()

    reports = svc.reports()
    out.print(render.balance_table(reports.all_balances()))
    usage_rows = [
        row
        for b in reports.all_balances()
        if not reports.is_contacts_account(b["account_id"])
        for row in reports.usage(b["account_id"], "2026-11")
    ]
    out.print(render.usage_table(usage_rows))
    out.print(render.allowance_table(reports.allowance_usage("northwind")))
    out.print(
        render.simple_table(
            [reports.contact_count("northwind")], title="Billable contacts (projection)"
        )
    )
    documents = reports.all_documents()
    out.print(render.documents_table(documents))
    for document in documents:
        if document["period"] == "2026-11" or (
            document["account_id"] in {"acme", "northwind"} and document["status"] != "replaced"
        ):
            out.print(render.document_panel(reports.document(document["number"])))
    out.print(render.dead_letter_table(svc.ledger.process_recorder.dead_letters(20)))  # type: ignore[attr-defined]
    out.print(render.parked_table(svc.ledger.process_recorder.parked_by_account()))  # type: ignore[attr-defined]
    status = _status_messages(svc)
    out.print(
        render.simple_table(
            [
                {
                    "time": m["time"],
                    "type": m["type"],
                    "account": m["data"]["account_id"],  # type: ignore[index]
                    "balance": m["data"]["balance"],  # type: ignore[index]
                }
                for m in status
            ],
            title="billing.account-status (outbox)",
        )
    )
    out.print(
        render.simple_table(
            [
                {
                    "published": summary["published"],
                    "applied": summary["applied"],
                    "duplicates dropped": summary["duplicates"],
                    "dead-lettered": summary["dead_letters"],
                    "parked (account not open)": summary["parked"],
                    "stored events": svc.ledger.recorder.max_notification_id() or 0,
                }
            ],
            title="Pipeline",
        )
    )
