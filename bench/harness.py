"""Shared benchmark plumbing: embedded services, publishing, the raw baseline,
and running the ledger consumer in a child process to measure it alone."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from consumers.publishing import Outgoing, producer, publish  # noqa: E402
from ledger.embedded import EmbeddedBroker, EmbeddedPostgres, start_broker, start_postgres  # noqa: E402
from ledger.settings import Settings  # noqa: E402


@dataclass
class Services:
    postgres: EmbeddedPostgres
    broker: EmbeddedBroker
    settings: Settings

    def stop(self) -> None:
        self.broker.stop()
        self.postgres.stop()
        # The temporary data directory (up to ~1 GB after --events 500000).
        shutil.rmtree(self.postgres.datadir.parent, ignore_errors=True)


def start(partitions: int = 4) -> Services:
    datadir = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    postgres = start_postgres(datadir / "pg", persistent=False)
    broker = start_broker()
    settings = Settings(
        database_url=postgres.url, kafka_bootstrap=broker.bootstrap, topic_partitions=partitions
    )
    from consumers.topics import ensure_topics

    ensure_topics(settings.kafka_config(broker.bootstrap), settings.all_topics(), partitions)
    return Services(postgres, broker, settings)


def publish_all(services: Services, messages: list[Outgoing]) -> float:
    kafka = producer(services.settings.kafka_config(services.broker.bootstrap))
    started = time.perf_counter()
    publish(kafka, messages)
    kafka.close()
    return time.perf_counter() - started


def raw_drain(services: Services, topic: str, expected: int) -> float:
    """The baseline: kafka-python reading the topic and decoding each JSON value, nothing else."""
    consumer = KafkaConsumer(
        **services.settings.kafka_config(services.broker.bootstrap),
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=32 * 1024 * 1024,
    )
    numbers = sorted(consumer.partitions_for_topic(topic) or [])
    partitions = [TopicPartition(topic, p) for p in numbers]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    seen = 0
    started: float | None = None
    deadline = time.monotonic() + 600
    while seen < expected and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500, max_records=5000).values():
            if started is None:
                started = time.perf_counter()
            for record in records:
                json.loads(record.value)
                seen += 1
    elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    if seen < expected:
        raise RuntimeError(f"raw drain saw {seen} of {expected}")
    return elapsed


def run_ledger_consumer(services: Services, timeout: float = 900) -> dict[str, Any]:
    """Run the real consumer in a child process until caught up; returns its own figures."""
    env = {
        **os.environ,
        "LEDGER_DATABASE_URL": services.postgres.url,
        "LEDGER_KAFKA_BOOTSTRAP": services.broker.bootstrap,
        "LEDGER_TOPIC_PARTITIONS": str(services.settings.topic_partitions),
    }
    child = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("consume_child.py"))],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if child.returncode != 0:
        raise RuntimeError(f"consumer child failed:\n{child.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return figures


def report(name: str, events: int, raw_seconds: float, ledger: dict[str, Any]) -> None:
    raw_rate = events / raw_seconds
    ledger_rate = events / ledger["seconds"]
    print(f"{name}: {events:,} events")
    print(
        f"  raw kafka-python drain + json decode : {raw_rate:>10,.0f} events/s ({raw_seconds:.1f}s)"
    )
    print(
        f"  ledger consumer, exactly-once + dedupe: {ledger_rate:>10,.0f} events/s "
        f"({ledger['seconds']:.1f}s, {ledger['stored_events']:,} stored events, "
        f"{ledger['batches']} batches)"
    )
    print(f"  consumer peak RSS: {ledger['peak_rss_mb']:.0f} MB")
    print(f"raw={raw_rate:.0f} ledger={ledger_rate:.0f} ratio={ledger_rate / raw_rate:.2f}")


def run_benchmark(
    name: str,
    topic: str,
    make_messages: Callable[[int, int], tuple[list[Outgoing], list[Outgoing]]],
    events: int,
    accounts: int,
    description: str,
) -> None:
    """Command line, publish, raw drain of ``topic``, ledger consumer, report."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--events", type=int, default=events)
    parser.add_argument("--accounts", type=int, default=accounts)
    args = parser.parse_args()
    services = start()
    try:
        setup, measured = make_messages(args.events, args.accounts)
        seconds = publish_all(services, setup + measured)
        print(f"published {len(setup) + len(measured):,} messages in {seconds:.1f}s")
        raw_seconds = raw_drain(services, topic, len(measured))
        ledger = run_ledger_consumer(services)
        report(name, len(measured), raw_seconds, ledger)
    finally:
        services.stop()
