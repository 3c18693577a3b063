"""Running the demo: embedded services, the scenario published phase by phase,
months closed, proformas paid, the books printed."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg
from kafka import KafkaConsumer, TopicPartition
from rich.console import Console

from consumers.runner import LedgerConsumer
from consumers.upstream_publisher import Outgoing, producer, publish
from ledger.documents import Document
from ledger.entrypoints.bootstrap import Services, bootstrap
from ledger.entrypoints.cli import render, render_refused
from ledger.entrypoints.demo.scenario import Scenario, when
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
    # The demo's "now" (the parking bound is measured against it): after November.
    svc = bootstrap(
        settings,
        clock=lambda: when("2026-12-01T12:00"),
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
    docs = _wrote(consumer, svc.close_periods(when("2026-11-01T12:00")))
    err.print(
        f"[bold cyan]>[/bold cyan] closed October as of 2026-11-01T12:00Z: {len(docs)} documents"
    )
    # northwind's first proforma (priced at the opening) is paid by card: its invoice
    # takes the next number after October's email invoices.
    [paid] = _wrote(
        consumer, [svc.pay_proforma("northwind", "PF-northwind-0001", when("2026-11-01T13:00"))]
    )
    err.print(f"[bold cyan]>[/bold cyan] northwind paid PF-northwind-0001: invoice {paid.number}")
    phase("November 1-15", scenario.november_first_half())
    second, noise = scenario.november_second_half()
    phase("November 16-30 (+ duplicates and malformed messages)", second + noise)
    docs = _wrote(consumer, svc.close_periods(when("2026-12-01T12:00")))
    err.print(
        f"[bold cyan]>[/bold cyan] closed November as of 2026-12-01T12:00Z: {len(docs)} documents"
    )
    [paid] = _wrote(
        consumer, [svc.pay_proforma("northwind", "PF-northwind-0002", when("2026-12-01T13:00"))]
    )
    err.print(f"[bold cyan]>[/bold cyan] northwind paid PF-northwind-0002: invoice {paid.number}")
    consumer.close()
    # The upstreams' producer too: left open, it refreshes its metadata from a broker
    # that is stopping, and logs each failure as an error.
    kafka.close()
    svc.read_models().catch_up()
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
