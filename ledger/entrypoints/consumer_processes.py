"""Scale-out: N consumer processes in one consumer group, supervised by ``serve``.

One consumer process keeps one core busy (decoding, validating and billing
are Python, under one GIL); more processes use more cores. Nothing else has
to change for it, because the guarantees are per partition:

- the group gives each partition to one member; records are keyed by
  account, so an account's messages are only ever applied by the process that
  holds its partition, with its own ``Ledger``, aggregate cache and
  connections;
- the position of every partition is in PostgreSQL, written in the batch's
  transaction: after a rebalance the new owner seeks to it, and a member
  that lost a partition but still commits a batch for it collides with the
  stored position (``IntegrityError``) and writes nothing.

The supervisor stops every process when one of them exits unexpectedly
("restart, don't limp", as for the roles of ``serve``); on SIGTERM each
process finishes the batch in flight.
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess

import structlog

from consumers.process_tuning import tune_consumer_process
from ledger.entrypoints.bootstrap import bootstrap
from ledger.entrypoints.logs import configure
from ledger.entrypoints.settings import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Endpoints:
    """Where the processes find PostgreSQL and Kafka: the parent's resolved
    addresses, so that they share its embedded services when it started them."""

    database_url: str
    kafka_bootstrap: str
    #: The first process serves Prometheus metrics on ``metrics_port + 1``, and so on.
    metrics_port: int | None = None
    #: Seconds to keep consuming after SIGTERM (the embedded broker's log dies with it).
    drain_seconds: float = 0.0
    metrics_host: str = "127.0.0.1"


class ConsumerProcessFailed(RuntimeError):
    pass


def run_consumer_processes(count: int, endpoints: Endpoints, stop: threading.Event) -> None:
    """Run ``count`` consumer processes until ``stop`` is set, then stop them with
    SIGTERM (each finishes its batch in flight). Raises if one fails.

    A process that exits with 0 was stopped by a signal sent to it (or to the
    whole process group): the service stops too, cleanly. No state is shared
    with the processes (a ``multiprocessing.Event`` holds a lock that a
    SIGKILLed process would never release): they get signals, and watch this
    process so that none outlives it.
    """
    context = multiprocessing.get_context("spawn")  # no fork of a process holding threads
    processes: list[BaseProcess] = []
    try:
        for index in range(count):
            member = context.Process(
                target=_consume, args=(index, endpoints), name=f"ledger-consumer-{index}"
            )
            member.start()
            processes.append(member)
        log.info("consumer_processes_started", count=count, pids=[p.pid for p in processes])
        while not stop.is_set():
            ended = wait([p.sentinel for p in processes], timeout=0.5)
            if not ended or stop.is_set():
                continue
            gone = [p for p in processes if p.sentinel in ended]
            for process in gone:
                process.join()  # sets its exit code
            failed = [p for p in gone if p.exitcode != 0]
            if failed:
                raise ConsumerProcessFailed(
                    ", ".join(f"{p.name} exited with code {p.exitcode}" for p in failed)
                )
            log.info("consumer_process_stopped_by_signal", names=[p.name for p in gone])
            stop.set()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: finish the batch in flight, then exit
        for process in processes:
            process.join(timeout=60)
            if process.is_alive():  # a batch cannot take a minute: something is stuck
                log.error("consumer_process_killed", name=process.name)
                process.kill()
                process.join()
        log.info("consumer_processes_stopped", exit_codes=[p.exitcode for p in processes])


def _consume(index: int, endpoints: Endpoints) -> None:
    """One member of the group: the same consumer ``serve --role consumer`` runs,
    on tables the supervisor's process created (no DDL here: it would take locks
    that deadlock with a sibling's batch)."""
    configure(json_lines=True, fields={"consumer_process": index})
    batch_scope = tune_consumer_process()  # this process only consumes
    stopping = threading.Event()
    # Ctrl-C reaches the whole process group: the supervisor decides when to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stopping.set())
    parent = multiprocessing.parent_process()
    if parent is not None:  # the supervisor was killed: stop, don't consume unsupervised
        threading.Thread(
            target=_stop_when_gone, args=(parent.sentinel, stopping), daemon=True
        ).start()
    services = bootstrap(
        Settings(database_url=endpoints.database_url, kafka_bootstrap=endpoints.kafka_bootstrap),
        create_tables=False,
    )
    try:
        if endpoints.metrics_port:
            from prometheus_client import start_http_server

            start_http_server(endpoints.metrics_port + 1 + index, addr=endpoints.metrics_host)
        services.consumer(batch_scope=batch_scope).run(stopping, endpoints.drain_seconds)
    finally:
        services.close()


def _stop_when_gone(sentinel: int, stopping: threading.Event) -> None:
    wait([sentinel])
    stopping.set()
