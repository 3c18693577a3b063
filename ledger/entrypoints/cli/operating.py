"""Operating the ledger: read models, Kafka positions, message schemas, the
running service's endpoints, the embedded servers, and the demo."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ledger.entrypoints.cli import render
from ledger.entrypoints.cli.app import (
    JsonFlag,
    UserError,
    app,
    err,
    out,
    positions_app,
    print_json,
    projections_app,
    serve_running,
    services,
    sole_writer,
)
from ledger.entrypoints.cli.escaping import safe
from ledger.entrypoints.logs import configure

if TYPE_CHECKING:
    from rich.console import Group

    from consumers.positions import Positions
    from ledger.entrypoints import status_file
    from ledger.entrypoints.bootstrap import Services


@projections_app.command("rebuild")
def projections_rebuild() -> None:
    """Drop the read models and replay the whole history into them.

    Refused while ledger serve runs its projections role: stop it first.
    """
    from rich.progress import Progress

    with services(write=True) as svc, sole_writer(svc, "stop it, then rebuild"):
        read_models = svc.read_models(sole_work=True)
        head = svc.ledger.recorder.max_notification_id() or 0
        names = ", ".join(p.name for p in read_models.projections)
        with Progress(console=err) as progress:
            task = progress.add_task(names, total=head)
            read_models.rebuild(lambda n: progress.advance(task, n))
            progress.update(task, completed=head)
    out.print(f"rebuilt {len(read_models.projections)} projections from {head} events")


@projections_app.command("catch-up")
def projections_catch_up() -> None:
    """Apply the stored events the read models have not applied yet (what serve does)."""
    with services(write=True) as svc, sole_writer(svc, "it keeps them up to date"):
        read_models = svc.read_models()
        read_models.catch_up()
    applied = read_models.applied
    out.print(", ".join(f"{name}: {count:,} event(s) applied" for name, count in applied.items()))


@app.command()
def schemas(
    check: Annotated[bool, typer.Option("--check", help="Fail if the files are stale.")] = False,
    folder: Path = Path("schemas"),
) -> None:
    """Regenerate the JSON Schemas of every input and outbound message."""
    from ledger.entrypoints import schemas as schema_files

    if check:
        stale = schema_files.stale(folder)
        if stale:
            raise UserError(f"stale schemas: {', '.join(stale)} (run: ledger schemas)")
        out.print("schemas are current")
        return
    written = schema_files.write(folder)
    out.print(f"wrote {len(written)} schemas to {folder}/")


@contextmanager
def _positions_services() -> Iterator[tuple[Services, Positions]]:
    from ledger.entrypoints.settings import Settings

    settings = Settings()
    if settings.kafka_bootstrap is None:
        running = serve_running(settings)
        if running is None or running.kafka_bootstrap is None:
            raise UserError(
                "LEDGER_KAFKA_BOOTSTRAP is unset and no ledger serve with an embedded"
                " broker runs here (ledger status): there is no log to compare positions with"
            )
        settings.kafka_bootstrap = running.kafka_bootstrap
    with services(need_kafka=True, settings=settings) as svc:
        positions = svc.positions()
        try:
            yield svc, positions
        finally:
            positions.probe.close()


@positions_app.callback()
def positions_show(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Each input partition: its log, stored position, log start and end, lag, and
    whether it is held (stored position outside the log: resolve with `reset`)."""
    if ctx.invoked_subcommand is not None:
        return
    with _positions_services() as (svc, positions):
        checked = positions.check(svc.input_partitions(positions), adopt=False, exact=True)
    state = {"ok": "ok", "new_log": "new log"}
    if as_json:
        print_json(
            [
                {
                    "topic": p.topic,
                    "partition": p.partition,
                    "log": p.log_id,
                    "epoch": p.epoch,
                    "stored": p.stored,
                    "next": p.next_offset,
                    "start": p.log_start,
                    "end": p.log_end,
                    "lag": p.lag,
                    "state": state.get(p.status, f"HELD: {p.status}"),
                }
                for p in checked.values()
            ]
        )
        return
    # Kafka's convention: "next" is the first offset to read (a committed offset).
    rows = [
        {
            "topic": p.topic,
            "part": p.partition,
            "next": p.next_offset,
            "start": p.log_start,
            "end": p.log_end,
            "lag": p.lag,
            "state": state.get(p.status, f"HELD: {p.status}"),
        }
        for p in checked.values()
    ]
    out.print(render.simple_table(rows))
    for p in checked.values():
        if p.status in ("before_start", "beyond_end"):
            err.print(f"held {p.topic}:{p.partition}: {p.reason}", highlight=False, markup=False)
    fresh = sum(p.status == "new_log" for p in checked.values())
    if fresh:
        err.print(
            f"{fresh} partition(s): a new log, not read yet (a consumer reads it from its start)"
        )


@positions_app.command("reset")
def positions_reset(
    topic: str,
    partition: int,
    to: Annotated[
        str, typer.Option("--to", help="earliest, latest, or an offset of the partition's log.")
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the history).")],
    force: Annotated[
        bool, typer.Option("--force", help="Also move a partition that is not held.")
    ] = False,
) -> None:
    """Move a partition's position within its log: an operator's act, recorded.

    Only a held partition is moved unless --force: moving a position that is
    within its log skips records (forward) or re-reads them (backward; their
    dedupe keys refuse them).
    """
    from kafka import TopicPartition

    from consumers.assignment import POSITION_CHECK_SECONDS
    from consumers.positions import load_partition_log

    with _positions_services() as (svc, positions):
        tp = TopicPartition(topic, partition)
        if tp not in svc.input_partitions(positions):
            raise UserError(f"no input partition {topic}:{partition}")
        position = positions.check([tp], adopt=False, exact=True).get(tp)
        if position is None:
            raise UserError(f"the broker cannot describe {topic}:{partition} now: try again")
        if position.status == "new_log":
            raise UserError(
                f"{topic}:{partition} is a new log no consumer has read yet (it is read from"
                " its start): nothing to reset"
            )
        if not position.held and not force:
            raise UserError(
                f"{topic}:{partition} is not held (next offset {position.next_offset} is within"
                f" {position.log_start}..{position.log_end}); --force to move it anyway"
            )
        targets = {"earliest": position.log_start, "latest": position.log_end}
        if to in targets:
            offset = targets[to]
        elif to.isascii() and to.isdigit():
            offset = int(to)
        else:
            raise UserError(f"--to must be earliest, latest or an offset, not {to!r}")
        partition_log = load_partition_log(svc.ledger, topic, partition)
        assert partition_log is not None  # check() records the log it found
        partition_log.reset(
            to_offset=offset,
            stored=position.stored,
            log_start=position.log_start,
            log_end=position.log_end,
            reason=reason,
            at=svc.clock(),
        )
        svc.ledger.save(partition_log)
    out.print(
        f"{topic}:{partition} reads log {partition_log.log_id} from offset {offset}"
        f" (epoch {partition_log.epoch}); a running consumer takes it within"
        f" {POSITION_CHECK_SECONDS:.0f} s",
        highlight=False,
        markup=False,
    )


@app.command()
def status(as_json: JsonFlag = False) -> None:
    """Whether ledger serve runs here (LEDGER_HOME), and its endpoints: database,
    Kafka bootstrap (publish to it), metrics. Exit code 1 when it does not run."""
    from ledger.entrypoints import status_file
    from ledger.entrypoints.embedded import postgres_pid
    from ledger.entrypoints.settings import Settings

    settings = Settings()
    path = status_file.path(settings.home)
    try:
        current = status_file.read(settings.home)
    except (ValueError, TypeError):
        raise UserError(f"{path} is not a serve status file: remove it") from None
    running = current is not None and status_file.alive(current)
    pg_dir = settings.home / "pg"
    embedded_pg = postgres_pid(pg_dir)
    report: dict[str, Any] = {
        "serve": "running" if running else ("stale" if current else "not running"),
        "status_file": str(path),
        **({} if current is None else asdict(current)),
        "embedded_postgres": {"folder": str(pg_dir), "pid": embedded_pg},
    }
    if as_json:
        print_json(report)
    else:
        if current is None:
            out.print(f"ledger serve is not running here (no {safe(path)})", soft_wrap=True)
        elif not running:
            out.print(
                f"ledger serve is not running: {safe(path)} names pid {current.pid}, which has"
                " exited without removing it (killed?); start serve again, or delete the file",
                soft_wrap=True,
            )
        else:
            out.print(_endpoints(current))
        if embedded_pg:
            out.print(
                f"embedded PostgreSQL in {safe(pg_dir)}: running (pid {embedded_pg})",
                soft_wrap=True,
            )
    if not running:
        raise typer.Exit(1)


def _endpoints(current: status_file.ServeStatus) -> Group:
    embedded = {True: " (embedded)", False: ""}
    kafka = safe(current.kafka_bootstrap or "-") + embedded[current.embedded_kafka]
    return render.facts(
        [
            ("pid", str(current.pid)),
            ("started", safe(current.started_at)),
            ("roles", safe(", ".join(current.roles))),
            ("database", safe(current.database_url) + embedded[current.embedded_database]),
            ("schema", safe(current.database_schema)),
            ("kafka bootstrap", kafka),
            ("metrics", f"http://{safe(current.metrics)}/metrics" if current.metrics else "-"),
        ],
        title="ledger serve is running",
    )


@app.command("stop-embedded")
def stop_embedded() -> None:
    """Stop the embedded PostgreSQL servers under LEDGER_HOME (they outlive commands
    so the next one starts fast); make clean runs this before deleting the folder."""
    from ledger.entrypoints.embedded import stop_postgres
    from ledger.entrypoints.settings import Settings

    settings = Settings()
    running = serve_running(settings)
    if running is not None and running.embedded_database:
        raise UserError(f"ledger serve (pid {running.pid}) uses it: stop serve first")
    stopped = [
        pid_file.parent
        for pid_file in sorted(settings.home.glob("**/postmaster.pid"))
        if stop_postgres(pid_file.parent)
    ]
    for folder in stopped:
        out.print(f"stopped the embedded PostgreSQL in {safe(folder)}", soft_wrap=True)
    if not stopped:
        out.print(f"no embedded PostgreSQL was running under {safe(settings.home)}", soft_wrap=True)


@app.command()
def demo() -> None:
    """A generated month on embedded PostgreSQL and Kafka, end to end, printed."""

    from ledger.entrypoints.demo import run_demo
    from ledger.entrypoints.settings import Settings

    # The demo's own lines say what happens; a broker stopping at its end is not news
    # (kafka-python warns "No node available for metadata refresh").
    configure(json_lines=False, level=logging.WARNING, kafka_level=logging.ERROR)
    if not out.is_terminal:
        out.width = 150  # tables stay readable when piped or captured
    # Its own books, under LEDGER_HOME when that is set (else the project's .ledger/demo).
    home = Settings().home / "demo" if "LEDGER_HOME" in os.environ else None
    run_demo(out, err, home)
