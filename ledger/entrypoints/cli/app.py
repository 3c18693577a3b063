"""The ``ledger`` Typer app and what its commands share: the services they open,
how they print (rich, upstream text escaped), their notes when a read model is
behind, and how they parse times and durations."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from ledger.entrypoints.cli.escaping import safe
from ledger.entrypoints.cli.loading import loading_modules
from ledger.entrypoints.logs import LazyLogger, configure

# The wiring, the settings and what they import (psycopg, kafka-python, pydantic,
# eventsourcing) are imported by the commands that use them: ``ledger --help``
# and the reads never import what they do not run (tests/e2e/test_cli_imports.py).
if TYPE_CHECKING:
    from ledger.entrypoints import status_file
    from ledger.entrypoints.bootstrap import Services
    from ledger.entrypoints.settings import Settings
    from ledger.entrypoints.settings_fields import SettingsFields

#: The top-level help (``ledger --help``).
HELP = """ledger: run the service, close periods, and read the books.

User errors (unknown account, bad time, unreachable database) print one line
on stderr and exit non-zero; tracebacks are for bugs. A read says on stderr
when the read model it reads is behind the ledger; a write brings the read
models up to date before it returns.
"""

# Plain help: typer's rich help shows every flag as taking a value ("--json <bool>").
app = typer.Typer(add_completion=False, no_args_is_help=True, help=HELP, rich_markup_mode=None)


projections_app = typer.Typer(
    no_args_is_help=True, help="Maintain the read models.", rich_markup_mode=None
)


app.add_typer(projections_app, name="projections")


dead_letters_app = typer.Typer(help="Refused messages: list them, replay them.")


app.add_typer(dead_letters_app, name="dead-letters")


positions_app = typer.Typer(
    invoke_without_command=True,
    help="Kafka positions stored in PostgreSQL, per partition, against the broker's logs.",
)


app.add_typer(positions_app, name="positions")


# No emoji codes: ":warning:" in an upstream id is text, not a picture.
out = Console(emoji=False)


err = Console(stderr=True, emoji=False)


log = LazyLogger("ledger.entrypoints.cli")


JsonFlag = Annotated[bool, typer.Option("--json", is_flag=True, help="Machine-readable output.")]


class UserError(Exception):
    pass


def announce(message: str) -> None:
    err.print(f"[dim]{safe(message)}[/dim]", soft_wrap=True)


def note(message: str) -> None:
    err.print(f"note: {message}", highlight=False, soft_wrap=True)


def quiet_library_logs() -> None:
    """Readable log lines, and a broker problem surfaces as the command's one-line
    error: kafka-python's own lines (a metadata refresh cancelled at close, a
    reconnect) are noise here."""
    configure(json_lines=False, kafka_level=logging.CRITICAL)


@contextmanager
def services(
    *, need_kafka: bool = False, write: bool = False, settings: Settings | None = None
) -> Iterator[Services]:
    """The whole wiring (``bootstrap``): for the commands that write, trace or run."""
    with loading_modules():
        from ledger.entrypoints.bootstrap import bootstrap
        from ledger.entrypoints.settings import Settings

    quiet_library_logs()
    svc = bootstrap(settings or Settings(), need_kafka=need_kafka, announce=announce)
    try:
        if write and svc.database_read_only():
            raise UserError(READ_ONLY)
        yield svc
    finally:
        svc.close()


READ_ONLY = "the database is read-only (a standby, or default_transaction_read_only is on)"


def print_json(data: Any) -> None:
    def default(value: Any) -> Any:
        if isinstance(value, Decimal):
            return str(value)
        if hasattr(value, "isoformat"):
            return value.isoformat()
        return str(value)

    # ASCII escapes: no control character of an upstream string reaches the terminal.
    out.print_json(json.dumps(data, default=default), ensure_ascii=True)


#: Read model names the read commands name in their notes.
READ_MODELS = {
    "balances": "balances",
    "monthly_usage": "monthly usage",
    "documents": "documents",
    "contacts": "contacts",
    "payments": "payments",
    "notices": "notices",
}


def say_behind(settings: SettingsFields, behind: Mapping[str, int]) -> None:
    """One line on stderr per read model (name -> events it has not applied) that has
    not applied every stored event."""
    late = {name: count for name, count in behind.items() if count}
    running = serve_running(settings) if late else None
    remedy = (
        f"ledger serve (pid {running.pid}) is applying them"
        if running and "projections" in running.roles
        else "run ledger serve, or ledger projections catch-up"
    )
    for name, count in late.items():
        note(f"{READ_MODELS[name]} are {count:,} event(s) behind the ledger; {remedy}")


def say_if_behind(svc: Services, *names: str) -> None:
    behind = svc.read_models().behind_by_name()
    say_behind(svc.settings, {name: count for name, count in behind.items() if name in names})


def bring_read_models_up_to_date(svc: Services, timeout: float = 10.0) -> None:
    """After a write: apply it to the read models before returning.

    In this process when no one else writes them; else (``serve`` does) wait,
    with a deadline, until that writer has applied everything stored so far.
    """
    from projections.writer_lock import ProjectionsBusy, projections_writer

    read_models = svc.read_models()
    try:
        with projections_writer(svc.database_url, svc.settings.database_schema):
            read_models.catch_up()
            return
    except ProjectionsBusy:
        pass
    deadline = time.monotonic() + timeout
    while read_models.behind() and time.monotonic() < deadline:
        time.sleep(0.1)
    say_if_behind(svc, *READ_MODELS)


def serve_running(settings: SettingsFields) -> status_file.ServeStatus | None:
    """The serve named by LEDGER_HOME/serve.json, if that process is alive."""
    from ledger.entrypoints import status_file

    try:
        current = status_file.read(settings.home)
    except (ValueError, TypeError):
        return None  # half-written by hand or by an older version: not a live serve
    return current if current is not None and status_file.alive(current) else None


def parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"not a time: {text!r} (use RFC 3339, e.g. 2026-12-01T06:00:00Z)") from None
    if value.tzinfo is None:
        raise UserError(f"time {text!r} has no UTC offset (add Z or +01:00)")
    return value


def parse_duration(text: str) -> timedelta:
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    try:
        return timedelta(**{units[text[-1]]: float(text[:-1])})
    except (KeyError, ValueError):
        raise UserError(f"not a duration: {text!r} (e.g. 30m, 6h, 2d)") from None


PROJECTIONS_BUSY = (
    "another process is writing the read models of schema {schema!r} (ledger serve,"
    " or a rebuild); {advice}"
)


@contextmanager
def sole_writer(svc: Services, advice: str) -> Iterator[None]:
    from projections.writer_lock import ProjectionsBusy, projections_writer

    schema = svc.settings.database_schema
    try:
        with projections_writer(svc.database_url, schema):
            yield
    except ProjectionsBusy:
        raise UserError(PROJECTIONS_BUSY.format(schema=schema, advice=advice)) from None


TopicFilter = Annotated[str | None, typer.Option("--topic", help="Only from this source topic.")]


ReasonFilter = Annotated[
    str | None, typer.Option("--reason", help="Only reasons containing TEXT (any case).")
]
