"""Running the demo: embedded services, the scenario published phase by phase,
months closed, proformas paid, the books printed."""

from __future__ import annotations

import json
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg
from kafka import KafkaConsumer, TopicPartition
from rich.console import Console

from consumers.runner import LedgerConsumer
from consumers.upstream_publisher import Outgoing, producer, publish
from ledger.documents import Document
from ledger.entrypoints.bootstrap import Services, bootstrap
from ledger.entrypoints.cli import render, render_payments, render_refused
from ledger.entrypoints.demo.scenario import Payments, Scenario, when
from ledger.entrypoints.embedded import stop_postgres
from ledger.entrypoints.settings import PROJECT_ROOT, Settings
from ledger.opening import account_uuid


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
    # The demo's "now" (the parking bound and the latest event time accepted are
    # measured against it): after November and the payments of early December.
    svc = bootstrap(
        settings,
        clock=lambda: when("2026-12-03T12:00"),
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
    run = _Months(svc, settings, err)
    try:
        run.october()
        run.november()
        run.december()
    finally:
        run.consumer.close()
        # The upstreams' producer too: left open, it refreshes its metadata from a
        # broker that is stopping, and logs each failure as an error.
        run.kafka.close()
    svc.read_models().catch_up()
    svc.status_publisher().catch_up()
    svc.payments_outbox().catch_up()
    _print_books(svc, out, run.summary)


class _Months:
    """The scenario published month by month: each stretch of facts consumed, then
    what the operator and the scheduler do (closes, collection scans)."""

    def __init__(self, svc: Services, settings: Settings, err: Console) -> None:
        self.svc, self.err = svc, err
        self.scenario, self.pay = Scenario(settings), Payments(settings)
        self.kafka = producer(svc.kafka_config)
        self.consumer = svc.consumer()
        self.summary = dict.fromkeys(
            ("published", "applied", "duplicates", "dead_letters", "parked"), 0
        )
        #: Each document's total, as the payments need it (text, as the bridge sends it).
        self.total: dict[str, str] = {}
        self.invoice_of: dict[str, str] = {}
        self.half = ""  # what hooli paid of its October invoice in November

    def say(self, text: str) -> None:
        self.err.print(f"[bold cyan]>[/bold cyan] {text}")

    def phase(self, title: str, messages: list[Outgoing]) -> None:
        t0 = time.perf_counter()
        self.summary["published"] += publish(self.kafka, messages)
        t1 = time.perf_counter()
        for outcome in self.consumer.drain(timeout=90):
            for name in ("applied", "duplicates", "dead_letters", "parked"):
                self.summary[name] += getattr(outcome, name)
        t2 = time.perf_counter()
        self.say(
            f"{title}: published {len(messages):,} in {t1 - t0:.1f}s, billed in {t2 - t1:.1f}s"
        )

    def close(self, at: str) -> list[Document]:
        documents = _wrote(self.consumer, self.svc.close_periods(when(at)))
        self.total.update({d.number: str(d.total.amount) for d in documents})
        self.say(f"closed the month as of {at}Z: {len(documents)} documents")
        return documents

    def collect(self, at: str) -> None:
        """The scheduler's scan (serve runs it after each close): requests what is due."""
        collected = self.svc.collect(when(at))
        # The scan saved accounts through another Ledger: as after a close (``_wrote``).
        self.consumer.ledger.evict([account_uuid(a) for a in self.svc.store.account_ids()])
        asked = ", ".join(f"{r.request_id} ({r.amount})" for _, r in collected.requests)
        self.say(f"collection scan at {at}Z: {asked or 'nothing requested'}")

    def october(self) -> None:
        self.phase("October", self.scenario.october())
        documents = self.close("2026-11-01T12:00")
        self.invoice_of = {d.account_id: d.number for d in documents if d.kind == "invoice"}
        # northwind's first proforma is collected by card: declined once, paid on the
        # retry; its final invoice takes the next number after October's invoices.
        proforma, total = "PF-northwind-0001", self.total["PF-northwind-0001"]
        self.collect("2026-11-01T12:00")
        declined = self.pay.failed(
            "northwind", total, when("2026-11-01T12:30"), proforma, 1, "insufficient_funds"
        )
        self.phase(f"the card is declined for {proforma} (a notice opens)", [declined])
        self.collect("2026-11-02T12:30")
        paid = self.pay.succeeded(
            "northwind", total, when("2026-11-02T12:35"), proforma, f"{proforma}/attempt-2"
        )
        self.phase(f"the retry of {proforma} is paid (the notice resolves)", [paid])

    def november(self) -> None:
        # hooli pays half of its October invoice and lets the rest go overdue; initech
        # pays 20.00 too much: held as credit, applied to its November invoice.
        hooli, initech = self.invoice_of["hooli"], self.invoice_of["initech"]
        self.half = str((Decimal(self.total[hooli]) / 2).quantize(Decimal("0.01")))
        over = str(Decimal(self.total[initech]) + Decimal("20.00"))
        payments = [
            self.pay.succeeded("hooli", self.half, when("2026-11-10T15:00"), hooli),
            self.pay.succeeded("initech", over, when("2026-11-12T09:00"), initech),
        ]
        self.phase(
            "November 1-15 (+ a partial payment and an overpayment)",
            self.scenario.november_first_half() + payments,
        )
        second, noise = self.scenario.november_second_half()
        self.phase("November 16-30 (+ duplicates and malformed messages)", second + noise)
        self.close("2026-12-01T12:00")

    def december(self) -> None:
        # The scan finds hooli's invoice overdue since 16 November and 14 days overdue
        # on 30 November: suspended. northwind's card is then declined for good.
        proforma, total = "PF-northwind-0002", self.total["PF-northwind-0002"]
        hooli = self.invoice_of["hooli"]
        self.collect("2026-12-01T12:00")
        declined = self.pay.failed(
            "northwind",
            total,
            when("2026-12-01T12:30"),
            proforma,
            1,
            "card_expired",
            retryable=False,
        )
        self.phase(f"a hard decline for {proforma} (suspended)", [declined])
        rest = str(Decimal(self.total[hooli]) - Decimal(self.half))
        self.phase(
            "hooli pays the rest, northwind pays by transfer (both reinstated)",
            [
                self.pay.succeeded("hooli", rest, when("2026-12-02T09:00"), hooli),
                self.pay.succeeded("northwind", total, when("2026-12-02T10:00"), proforma),
            ],
        )


def _print_books(svc: Services, out: Console, summary: dict[str, int]) -> None:
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
    payments = svc.payment_reports()
    for account in ("northwind", "hooli", "initech"):
        out.print(render_payments.payments_view(payments.payments_of(account)))
    out.print(render_payments.notices_view(payments.notices(), None))
    out.print(render_payments.receivables_view(payments.receivables(date(2026, 12, 1))))
    out.print(render_refused.dead_letter_table(svc.ledger.process_recorder.dead_letters(20)))  # type: ignore[attr-defined]
    out.print(render_refused.parked_table(svc.ledger.process_recorder.parked_by_account()))  # type: ignore[attr-defined]
    status = _status_messages(svc)
    out.print(
        render.simple_table(
            [
                {
                    "time": m["time"],
                    "type": m["type"],
                    "account": m["data"]["account_id"],  # type: ignore[index]
                    "balance": m["data"].get("balance", ""),  # type: ignore[attr-defined]
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
