"""Shared benchmark plumbing: embedded services, publishing, the raw baseline,
and running the ledger consumer in a child process to measure it alone."""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
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

import psycopg
from kafka import KafkaConsumer, TopicPartition
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from consumers.upstream_publisher import Outgoing, producer, publish  # noqa: E402
from ledger.entrypoints.embedded import (  # noqa: E402
    EmbeddedBroker,
    EmbeddedPostgres,
    start_broker,
    start_postgres,
)
from ledger.entrypoints.settings import Settings  # noqa: E402


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


@dataclass(frozen=True)
class Span:
    """When a process started working (first records) and finished, wall clock."""

    started: float
    ended: float


def raw_drain(bootstrap: str, topic: str, member: int, members: int) -> Span:
    """The baseline: kafka-python reading its share of the topic's partitions and
    decoding each JSON value, nothing else, until it reaches their end offsets."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=32 * 1024 * 1024,
    )
    numbers = sorted(consumer.partitions_for_topic(topic) or [])
    partitions = [TopicPartition(topic, p) for p in numbers if p % members == member]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    ends = consumer.end_offsets(partitions)
    started: float | None = None
    deadline = time.monotonic() + 600
    while any(consumer.position(tp) < end for tp, end in ends.items()):
        polled_at = time.time()
        for records in consumer.poll(timeout_ms=500, max_records=5000).values():
            if started is None:  # as the consumer child times it: from before this poll
                started = polled_at
            for record in records:
                json.loads(record.value)
        if time.monotonic() > deadline:
            raise RuntimeError("raw drain did not reach the end")
    ended = time.time()
    consumer.close()
    return Span(started or ended, ended)


def raw_drains(services: Services, topic: str, members: int) -> float:
    """``members`` raw drains in parallel processes, each its share of the partitions:
    seconds from the first one's first records to the last one's end."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(members) as pool:
        spans = pool.starmap(
            raw_drain, [(services.broker.bootstrap, topic, m, members) for m in range(members)]
        )
    return max(s.ended for s in spans) - min(s.started for s in spans)


def run_ledger_consumers(
    services: Services, topic: str, members: int, timeout: float = 900, *, chain: bool = True
) -> dict[str, Any]:
    """``members`` real consumer processes in one group, each until its partitions are
    caught up, on a fresh database; seconds from the first one's first poll that
    returned records of ``topic`` (the messages the raw drain reads) to the last
    one's end, the longest setup before it, and their own figures."""
    database_url = _fresh_database(services.postgres.url, f"bench_{members}_{int(chain)}")
    env = {
        **os.environ,
        "LEDGER_DATABASE_URL": database_url,
        "LEDGER_KAFKA_BOOTSTRAP": services.broker.bootstrap,
        "LEDGER_TOPIC_PARTITIONS": str(services.settings.topic_partitions),
        "LEDGER_CONSUMER_GROUP": f"bench-{members}",
        "BENCH_TOPIC": topic,
        "BENCH_MEMBERS": str(members),
        "BENCH_WITHOUT_CHAIN": "" if chain else "1",
    }
    from ledger.entrypoints.bootstrap import bootstrap

    # Tables are created here, before the consumers start: DDL while a sibling
    # writes can deadlock (see ledger.entrypoints.bootstrap.schema_lock).
    bootstrap(Settings(database_url=database_url), need_kafka=False).close()
    with contextlib.ExitStack() as files:
        logs = [files.enter_context(tempfile.TemporaryFile(mode="w+")) for _ in range(members)]
        figures = _run_children(env, logs, timeout)
    working = [f for f in figures if f["started"] is not None]
    return {
        "seconds": max(f["ended"] for f in working) - min(f["started"] for f in working),
        "setup_seconds": max(f["setup_seconds"] or 0 for f in working),
        "cpu_seconds": sum(f["cpu_seconds"] for f in working),
        "batches": sum(f["batches"] for f in figures),
        "stored_events": figures[0]["stored_events"],
        "peak_rss_mb": max(f["peak_rss_mb"] for f in figures),
    }


def chain_cost(services: Services, topic: str, events: int, rounds: int = 2) -> str:
    """One consumer process with the hash chain and one without it, alternately
    (``rounds`` each, in ABBA order, best of each): the chain's share of the rate."""
    rates: dict[bool, list[float]] = {True: [], False: []}
    for round_ in range(rounds):
        # ABBA: whichever runs first in a round runs second in the next.
        for chain in (True, False) if round_ % 2 == 0 else (False, True):
            seconds = run_ledger_consumers(services, topic, 1, chain=chain)["seconds"]
            rates[chain].append(events / seconds)
    with_chain, without = rates[True], rates[False]
    best_with, best_without = max(with_chain), max(without)
    return (
        f"chain: with={best_with:.0f} without={best_without:.0f} events/s"
        f" cost={1 - best_with / best_without:.1%}"
    )


def _run_children(env: dict[str, str], logs: list[Any], timeout: float) -> list[dict[str, Any]]:
    children = [
        subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("consume_child.py"))],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,  # a file: a pipe read after stdout could fill and block the child
            text=True,
        )
        for log in logs
    ]
    # Each child bootstraps, then waits; all are released at once (consume_child.py).
    for child in children:
        assert child.stdout is not None
        child.stdout.readline()
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    figures: list[dict[str, Any]] = []
    for child, log in zip(children, logs, strict=True):
        stdout, _ = child.communicate(timeout=timeout)
        if child.returncode != 0:
            log.seek(0)
            raise RuntimeError(f"consumer child failed:\n{log.read()[-3000:]}")
        figures.append(json.loads(stdout.strip().splitlines()[-1]))
    return figures


def _fresh_database(url: str, name: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_conninfo(url, dbname=name)


def report(name: str, events: int, members: int, raw_seconds: float, ledger: dict[str, Any]) -> str:
    raw_rate = events / raw_seconds
    ledger_rate = events / ledger["seconds"]
    each = "one process" if members == 1 else f"{members} processes in parallel"
    print(f"{name}: {events:,} events, {each}")
    print(
        f"  raw kafka-python drain + json decode : {raw_rate:>10,.0f} events/s ({raw_seconds:.1f}s)"
    )
    print(
        f"  ledger consumer, exactly-once + dedupe: {ledger_rate:>10,.0f} events/s "
        f"({ledger['seconds']:.1f}s, {ledger['stored_events']:,} stored events, "
        f"{ledger['batches']} batches)"
    )
    print(
        f"  before them, the setup messages (accounts): {ledger['setup_seconds']:.2f}s,"
        " not in the rate"
    )
    cpu_us = ledger["cpu_seconds"] / events * 1e6
    print(f"  consumer CPU, all threads and processes : {cpu_us:>10.1f} us per event")
    print(f"  consumer peak RSS: {ledger['peak_rss_mb']:.0f} MB (per process)")
    return f"raw={raw_rate:.0f} ledger={ledger_rate:.0f} ratio={ledger_rate / raw_rate:.2f}"


def time_ledger_command(database_url: str, home: Path, *args: str) -> None:
    """Run ``ledger ARGS`` as a user runs it (process start and imports included) on
    that database, and print how long it took."""
    started = time.perf_counter()
    subprocess.run(
        [str(Path(sys.executable).with_name("ledger")), *args],
        env={**os.environ, "LEDGER_DATABASE_URL": database_url, "LEDGER_HOME": str(home)},
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - started
    print(f"ledger {' '.join(args)} (the command, process start included): {seconds:.2f}s")


def host_speed() -> float:
    """Seconds for a fixed amount of pure Python work: the shared host's speed varies
    by a factor of 2-4 from hour to hour, which moves both rates (not their ratio)."""
    started = time.perf_counter()
    for _ in range(10_000_000):
        pass
    return time.perf_counter() - started


def run_benchmark(
    name: str,
    topic: str,
    make_messages: Callable[[int, int], tuple[list[Outgoing], list[Outgoing]]],
    events: int,
    accounts: int,
    description: str,
) -> None:
    """Command line, publish, then for each process count: the raw drain of ``topic``
    and the ledger consumer, the same number of processes for both (N consumer
    processes in one group, as ``ledger serve --consumers N`` runs them, against
    N raw drains in parallel, each on its share of the partitions). A line per
    count; the last line is the first count's: by default one raw drain and one
    consumer process, the measurement the benchmark's target is set for."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--events", type=int, default=events)
    parser.add_argument("--accounts", type=int, default=accounts)
    parser.add_argument(
        "--consumers",
        type=int,
        nargs="+",
        default=sorted({1, os.cpu_count() or 1}),
        help="process counts to measure (default: 1 and the number of cores)",
    )
    parser.add_argument(
        "--chain-cost",
        action="store_true",
        help="also run one consumer process without the hash chain (alternately with"
        " one with it) and print what the chain costs",
    )
    args = parser.parse_args()
    services = start()
    try:
        setup, measured = make_messages(args.events, args.accounts)
        seconds = publish_all(services, setup + measured)
        print(f"published {len(setup) + len(measured):,} messages in {seconds:.1f}s")
        print(f"host speed: {host_speed():.2f}s for 10M empty Python loop iterations")
        lines = []
        for members in args.consumers:
            raw_seconds = raw_drains(services, topic, members)
            ledger = run_ledger_consumers(services, topic, members)
            lines.append(report(name, len(measured), members, raw_seconds, ledger))
        for members, line in zip(args.consumers, lines, strict=True):
            print(f"consumers={members}: {line}")
        if args.chain_cost:
            print(chain_cost(services, topic, len(measured)))
        print(lines[0])
    finally:
        services.stop()
