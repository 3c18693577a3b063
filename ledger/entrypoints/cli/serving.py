"""``ledger serve``: the service's roles in threads (consumer processes too),
supervised: a crashed role stops the process, and a stop is bounded."""

from __future__ import annotations

import functools
import os
import signal
import threading
from collections.abc import Callable
from contextlib import ExitStack
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ledger.entrypoints.cli.app import (
    READ_ONLY,
    UserError,
    app,
    log,
    serve_running,
    sole_writer,
)
from ledger.entrypoints.logs import configure

# The service's wiring is imported when it runs, not when the CLI starts.
if TYPE_CHECKING:
    from ledger.entrypoints.bootstrap import Services
    from ledger.entrypoints.settings import Settings


def _guarded(
    stop: threading.Event, failures: list[BaseException], name: str, target: Callable[[], None]
) -> threading.Thread:
    """Run a role in a thread; a crashed role stops the process: restart, don't limp.

    A daemon thread: a role stuck past the shutdown timeout does not hold the exit.
    """

    def run() -> None:
        try:
            target()
        except BaseException as exc:
            log.exception("role_crashed", role=name)
            failures.append(exc)
            stop.set()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def _stop(svc: Services) -> None:
    """Close the services; an embedded broker's logs are counted before they vanish."""
    try:
        svc.close_embedded_logs()
    except Exception:  # the count is for the record; stopping must not fail for it
        log.exception("embedded_broker_logs_not_closed")
    svc.close()


ROLES = ("consumer", "projections", "publisher", "scheduler")


@app.command()
def serve(
    role: Annotated[
        list[str] | None,
        typer.Option(help="consumer, projections, publisher, scheduler; all when omitted."),
    ] = None,
    consumers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="Consumer processes in the group (LEDGER_CONSUMER_PROCESSES, default 1).",
        ),
    ] = None,
) -> None:
    """Run the service: consumers, projections, status publisher, period scheduler.

    Writes its endpoints to LEDGER_HOME/serve.json while it runs (ledger status).
    After a stop it exits within LEDGER_SHUTDOWN_TIMEOUT, stuck threads or not.
    """
    from ledger.entrypoints import shutdown, status_file
    from ledger.entrypoints.bootstrap import bootstrap
    from ledger.entrypoints.settings import Settings

    configure(json_lines=True)
    roles = set(role or ROLES)
    unknown = roles - set(ROLES)
    if unknown:
        raise UserError(f"unknown role(s): {', '.join(sorted(unknown))}")
    stop = threading.Event()
    failures: list[BaseException] = []

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("shutdown_requested", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threads: list[threading.Thread] = []
    with ExitStack() as stack:
        svc = bootstrap(
            Settings(),
            need_kafka=bool(roles & {"consumer", "publisher"}),
            announce=lambda m: log.info("embedded", message=m),
        )
        stack.callback(_stop, svc)  # an embedded broker's logs are counted before it stops
        if svc.database_read_only():
            raise UserError(f"{READ_ONLY}: ledger serve writes")
        if roles & {"consumer", "scheduler"} and svc.catalogue.dunning is None:
            raise UserError(
                f"the plan catalogue ({svc.settings.plans_dir}) has no [dunning] policy:"
                " payments cannot be scheduled (add plans/dunning.toml)"
            )
        metrics = _start_metrics(svc.settings)
        if svc.kafka_bootstrap:
            svc.ensure_topics()
        if "projections" in roles:
            stack.enter_context(sole_writer(svc, "one process writes them: stop it first"))
        _publish_endpoints(svc, sorted(roles), metrics, stack)
        threads = _start_roles(svc, roles, consumers, stop, failures)
        log.info("serving", roles=sorted(roles))
        while not stop.wait(0.5) and any(t.is_alive() for t in threads):
            pass
        stop.set()
        home = svc.settings.home
        # With the embedded broker the consumer first drains it (what it holds is lost
        # when it stops): that time comes on top of the shutdown budget.
        drain = svc.settings.stop_drain_timeout if svc.embedded_broker else timedelta(0)
        shutdown.arm(
            (svc.settings.shutdown_timeout + drain).total_seconds(),
            threads,
            lambda: status_file.remove(home, os.getpid()),
        )
        for thread in threads:
            thread.join()
    log.info("stopped", failures=len(failures))
    if failures:
        raise typer.Exit(1)


def _start_metrics(settings: Settings) -> str | None:
    if not settings.metrics_port:
        return None
    from prometheus_client import start_http_server

    address = f"{settings.metrics_host}:{settings.metrics_port}"
    try:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
    except OSError as exc:
        raise UserError(
            f"cannot serve metrics on {address}: {exc.strerror or exc}"
            " (LEDGER_METRICS_HOST, LEDGER_METRICS_PORT)"
        ) from None
    return address


def _publish_endpoints(
    svc: Services, roles: list[str], metrics: str | None, stack: ExitStack
) -> None:
    """serve.json for ``ledger status``; left alone if another live serve wrote it."""
    from ledger.entrypoints import status_file

    home = svc.settings.home
    current = serve_running(svc.settings)
    if current is not None and current.pid != os.getpid():
        log.warning("status_file_kept", path=str(status_file.path(home)), owner_pid=current.pid)
        return
    status = status_file.ServeStatus.now(
        roles=roles,
        database_url=svc.database_url,
        database_schema=svc.settings.database_schema,
        embedded_database=svc.embedded_postgres is not None,
        kafka_bootstrap=svc.kafka_bootstrap,
        embedded_kafka=svc.embedded_broker is not None,
        metrics=metrics,
    )
    try:
        status_file.write(home, status)
    except OSError as exc:  # a read-only home costs ``ledger status``, not the service
        log.warning("status_file_not_written", path=str(status_file.path(home)), error=str(exc))
        return
    stack.callback(status_file.remove, home, os.getpid())


def _start_roles(
    svc: Services,
    roles: set[str],
    consumers: int | None,
    stop: threading.Event,
    failures: list[BaseException],
) -> list[threading.Thread]:
    from consumers.process_tuning import tune_consumer_process
    from ledger.entrypoints.consumer_processes import Endpoints, run_consumer_processes

    threads = []
    processes = consumers or svc.settings.consumer_processes
    # The embedded broker's log dies with this process: consume what it holds first.
    drain_seconds = svc.settings.stop_drain_timeout.total_seconds() if svc.embedded_broker else 0.0
    if "consumer" in roles and processes > 1:
        assert svc.kafka_bootstrap is not None
        endpoints = Endpoints(
            svc.database_url,
            svc.kafka_bootstrap,
            svc.settings.metrics_port,
            drain_seconds=drain_seconds,
            metrics_host=svc.settings.metrics_host,
        )
        runs = functools.partial(run_consumer_processes, processes, endpoints, stop)
        threads.append(_guarded(stop, failures, "consumers", runs))
    elif "consumer" in roles:
        # Alone in this process, the consumer gets the process tuned for it; beside
        # other roles nothing process-wide is changed (consumers/process_tuning.py).
        consumer = (
            svc.consumer(batch_scope=tune_consumer_process())
            if roles == {"consumer"}
            else svc.consumer()
        )
        threads.append(
            _guarded(stop, failures, "consumer", lambda: consumer.run(stop, drain_seconds))
        )
    if "projections" in roles:
        consumer_thread = "consumer" in roles and processes == 1
        read_models = svc.read_models(sole_work=not consumer_thread)
        runs = functools.partial(read_models.run, stop)
        threads.append(_guarded(stop, failures, read_models.name, runs))
    if "publisher" in roles:
        publisher = svc.status_publisher()
        threads.append(_guarded(stop, failures, "publisher", lambda: publisher.run(stop)))
        payments = svc.payments_outbox()
        threads.append(_guarded(stop, failures, "payments-outbox", lambda: payments.run(stop)))
        heads = svc.chain_head_publisher()
        threads.append(_guarded(stop, failures, "chain-heads", lambda: heads.run(stop)))
    if "scheduler" in roles:

        def schedule() -> None:
            while not stop.is_set():
                documents = svc.close_periods()
                if documents:
                    log.info("scheduler_closed_periods", documents=len(documents))
                svc.collect()  # after the close: a proforma it issued may be due at once
                stop.wait(svc.settings.close_interval.total_seconds())

        threads.append(_guarded(stop, failures, "scheduler", schedule))
    return threads
