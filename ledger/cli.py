"""``ledger``: run the service, close periods, and read the books.

User errors (unknown account, bad time, unreachable database) print one line
on stderr and exit non-zero; tracebacks are for bugs.
"""

from __future__ import annotations

import functools
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import psycopg
import structlog
import typer
from kafka import TopicPartition
from kafka.errors import KafkaError
from pydantic import ValidationError
from rich.console import Console

from consumers.positions import Positions, load_partition_log
from consumers.processes import Endpoints, run_consumer_processes
from consumers.runner import POSITION_CHECK_SECONDS
from ledger import render
from ledger.account import Account
from ledger.bootstrap import Services, bootstrap
from ledger.contacts_account import contacts_as_of
from ledger.errors import LedgerError
from ledger.logging import configure
from ledger.settings import Settings, iso_duration

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
projections_app = typer.Typer(no_args_is_help=True, help="Maintain the read models.")
app.add_typer(projections_app, name="projections")
dead_letters_app = typer.Typer(help="Refused messages: list them, replay them.")
app.add_typer(dead_letters_app, name="dead-letters")
out = Console()
err = Console(stderr=True)
log = structlog.get_logger("ledger.cli")

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


class UserError(Exception):
    pass


def _announce(message: str) -> None:
    err.print(f"[dim]{message}[/dim]")


@contextmanager
def services(*, need_kafka: bool = False, settings: Settings | None = None) -> Iterator[Services]:
    svc = bootstrap(settings or Settings(), need_kafka=need_kafka, announce=_announce)
    try:
        yield svc
    finally:
        svc.close()


def _json(data: Any) -> None:
    def default(value: Any) -> Any:
        if isinstance(value, Decimal):
            return str(value)
        if hasattr(value, "isoformat"):
            return value.isoformat()
        return str(value)

    out.print_json(json.dumps(data, default=default))


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


# ---------------------------------------------------------------------- reading


@app.command()
def balance(account: str, as_json: JsonFlag = False) -> None:
    """Current balance of an account (negative: owed), and whether sending is blocked."""
    with services() as svc:
        row = svc.reports().balance(account)
    _json(row) if as_json else out.print(render.balance_table([row]))


@app.command()
def balances(as_json: JsonFlag = False) -> None:
    """Balances of all accounts."""
    with services() as svc:
        rows = svc.reports().all_balances()
    _json(rows) if as_json else out.print(render.balance_table(rows))


@app.command()
def usage(
    account: str,
    month: Annotated[str | None, typer.Option(help="YYYY-MM; all months if omitted.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Monthly usage: emails sent, included, charged, custom SMTP, late, per tier.

    For a contacts account: each allowance month (the subscription's monthly
    anniversaries; --month picks the one starting in that month) with its
    allowance, overage and what was billed of it.
    """
    if month is not None:
        from ledger.periods import Month

        month = str(Month.parse(month))
    with services() as svc:
        reports = svc.reports()
        if reports.is_contacts_account(account):
            rows = reports.allowance_usage(account, month)
            _json(rows) if as_json else out.print(render.allowance_table(rows))
            return
        rows = reports.usage(account, month)
    _json(rows) if as_json else out.print(render.usage_table(rows))


@app.command()
def contacts(
    account: str,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="RFC 3339 time; now if omitted.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Billable contacts of an account at a moment, and what made each billable.

    Rebuilt from the account's stored history (every applied contact change),
    checked against the contact versions the renewals count from.
    """
    from ledger.contacts_account import ContactsAccount

    with services() as svc:
        current = svc.ledger.get_account(account)
        if not isinstance(current, ContactsAccount):
            raise UserError(f"account {account!r} is billed by emails, not by contacts")
        at = parse_time(as_of) if as_of else svc.clock()
        listed = contacts_as_of(svc.ledger.history(account), at)
        stored = svc.ledger.process_recorder.billable_contacts(account, at)  # type: ignore[attr-defined]
    rows = [
        {
            "contact_id": change.contact_id,
            "billable_because": ", ".join(change.reasons),
            "version": change.version,
            "changed_at": change.changed_at,
            # Set only when reported after a renewal it predates was priced:
            # it counts from just after that renewal.
            "counted_from": change.counted_from,
        }
        for change in listed.values()
    ]
    consistent = stored == {cid: list(c.reasons) for cid, c in listed.items()}
    if as_json:
        _json(
            {
                "account_id": account,
                "as_of": at,
                "billable_contacts": len(rows),
                "matches_stored_versions": consistent,
                "contacts": rows,
            }
        )
        return
    out.print(
        render.simple_table(rows, title=f"Billable contacts of {account} at {at.isoformat()}")
    )
    out.print(f"{len(rows):,} billable contact(s)")
    if not consistent:
        raise UserError("history and the stored contact versions disagree: run ledger verify")


@app.command("mark-paid")
def mark_paid(
    account: str,
    proforma: str,
    at: Annotated[
        str | None, typer.Option("--at", help="Payment time, RFC 3339; now if omitted.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Record that a proforma was paid: issues its final invoice with the next number.

    Until payment events are consumed (the payments issue), this is how a
    proforma gets paid.
    """
    with services() as svc:
        invoice = svc.pay_proforma(account, proforma, parse_time(at) if at else None)
    row = {
        "number": invoice.number,
        "proforma": proforma,
        "account_id": invoice.account_id,
        "period": str(invoice.period),
        "total": str(invoice.total.amount),
        "currency": invoice.currency,
        "issued_on": invoice.issued_on,
    }
    if as_json:
        _json(row)
    else:
        out.print(f"invoice {invoice.number} issued for proforma {proforma}")


@app.command()
def invoices(account: str, as_json: JsonFlag = False) -> None:
    """Receipts, invoices and proformas of an account, with their status."""
    with services() as svc:
        rows = svc.reports().documents_of(account)
    _json(rows) if as_json else out.print(render.documents_table(rows))


@app.command()
def invoice(number: str, as_json: JsonFlag = False) -> None:
    """One receipt, invoice or proforma (by number or proforma id) with its lines."""
    with services() as svc:
        document = svc.reports().document(number)
    _json(document) if as_json else out.print(render.document_panel(document))


@app.command()
def history(account: str, as_json: JsonFlag = False) -> None:
    """Every stored event of an account: business time, recording time, what happened."""
    with services() as svc:
        events = [render.event_summary(e) for e in svc.ledger.history(account)]
    _json(events) if as_json else out.print(render.history_table(account, events))


@app.command()
def trace(account: str, message_id: str, as_json: JsonFlag = False) -> None:
    """Which ledger event billed an upstream message (email message id, CloudEvent id)
    or recorded a contact (contact id)."""
    with services() as svc:
        recorder = svc.ledger.process_recorder
        rows = recorder.trace_message(account, message_id)  # type: ignore[attr-defined]
        rows += recorder.trace_contact(account, message_id)  # type: ignore[attr-defined]
        if not rows:
            raise UserError(f"no message {message_id!r} was applied to account {account!r}")
        for row in rows:
            stored = svc.ledger.get_account(account, version=row["originator_version"])
            if isinstance(stored, Account):
                row["document_number"] = render.document_of_version(
                    svc, account, row["originator_version"]
                )
                row["account_version_balance"] = str(stored.balance.rounded().amount)
            else:
                row["billable_contacts_then"] = stored.billable
    _json(rows) if as_json else out.print(render.trace_table(rows))


TopicFilter = Annotated[str | None, typer.Option("--topic", help="Only from this source topic.")]
ReasonFilter = Annotated[
    str | None, typer.Option("--reason", help="Only reasons containing TEXT (any case).")
]


@dead_letters_app.callback(invoke_without_command=True)
def dead_letters(
    ctx: typer.Context,
    topic: TopicFilter = None,
    reason: ReasonFilter = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most N.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Messages refused by the consumers, newest first: reason, Kafka coordinates,
    key, payload, and whether they were replayed."""
    if ctx.invoked_subcommand is not None:
        return
    with services() as svc:
        recorder: Any = svc.ledger.process_recorder
        rows = recorder.dead_letters(limit, topic=topic, reason=reason)
        total = recorder.dead_letter_count()
        matching = recorder.dead_letter_count(topic=topic, reason=reason)
    if as_json:
        _json(
            {
                "total": total,
                "matching": matching,
                "dead_letters": [render.dead_letter_view(row) for row in rows],
            }
        )
        return
    out.print(render.dead_letter_table(rows))
    filtered = "" if topic is None and reason is None else f", {matching:,} matching"
    out.print(f"{len(rows):,} shown of {total:,} dead letter(s){filtered}", highlight=False)


@dead_letters_app.command("replay")
def replay_dead_letters(
    letter_id: Annotated[
        int | None, typer.Option("--id", help="The dead letter with this id.")
    ] = None,
    reason: ReasonFilter = None,
    every: Annotated[bool, typer.Option("--all", help="Every dead letter not replayed.")] = False,
    topic: TopicFilter = None,
    as_json: JsonFlag = False,
) -> None:
    """Queue dead letters for the consumer to apply again, once their cause is fixed
    (a plan added and the service restarted, an account opened).

    Each letter is queued once: a replayed letter is marked, and replaying it
    again does nothing. The consumer (ledger serve) re-drives queued letters
    through the normal path; what is still refused becomes a new dead letter.
    """
    if sum((letter_id is not None, reason is not None, every)) != 1:
        raise UserError("say which dead letters to replay: --id N, --reason TEXT or --all")
    with services() as svc:
        recorder: Any = svc.ledger.process_recorder
        queued = recorder.replay_dead_letters(letter_id=letter_id, topic=topic, reason=reason)
        letter = recorder.dead_letter(letter_id) if letter_id is not None else None
        matching = recorder.dead_letter_count(topic=topic, reason=reason)
    if letter_id is not None and (letter is None or topic not in (None, letter["topic"])):
        raise UserError(f"no dead letter {letter_id}" + (f" from {topic!r}" if topic else ""))
    if as_json:
        _json({"queued": [{"dead_letter_id": d, "parked_id": p} for d, p in queued]})
    elif queued:
        ids = ", ".join(str(d) for d, _ in queued[:20]) + (", ..." if len(queued) > 20 else "")
        out.print(
            f"queued {len(queued):,} dead letter(s) for replay (ids {ids});"
            " the consumer (ledger serve) re-drives them",
            highlight=False,
        )
    elif letter is not None:
        out.print(
            f"nothing to replay: dead letter {letter_id} was replayed at"
            f" {letter['replayed_at'].isoformat()} (parked as {letter['parked_id']})",
            highlight=False,
        )
    elif matching:
        out.print(
            f"nothing to replay: the {matching:,} matching dead letter(s) were replayed already",
            highlight=False,
        )
    else:
        out.print("nothing to replay: no dead letter matches", highlight=False)


@app.command()
def parked(
    account: Annotated[str | None, typer.Option("--account", help="Only this account.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Facts waiting for their account to open (and replayed dead letters queued),
    per account: how many, the oldest event time, since when."""
    with services() as svc:
        rows = svc.ledger.process_recorder.parked_by_account(account)  # type: ignore[attr-defined]
        bound = svc.settings.park_max_age
    total = sum(row["facts"] for row in rows)
    if as_json:
        _json({"total": total, "accounts": rows})
        return
    out.print(render.parked_table(rows))
    out.print(
        f"{total:,} fact(s) parked for {len(rows):,} account(s): applied when the account opens,"
        f" dead-lettered when not opened within {iso_duration(bound)} of the event",
        highlight=False,
    )


# ---------------------------------------------------------------------- writing


@app.command("close-periods")
def close_periods_cmd(
    as_of: Annotated[str, typer.Option("--as-of", help="Close time, RFC 3339.")],
    grace: Annotated[
        str | None, typer.Option(help="Late-event grace, e.g. 6h (default LEDGER_CLOSE_GRACE).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Issue receipts/invoices for every month that ended at least GRACE before AS_OF."""
    when = parse_time(as_of)
    with services() as svc:
        if grace is not None:
            svc.settings.close_grace = parse_duration(grace)
        documents = svc.close_periods(when)
    rows = [
        {
            "number": d.number,
            "account_id": d.account_id,
            "kind": d.kind,
            "period": str(d.period),
            "total": str(d.total.amount),
            "currency": d.currency,
        }
        for d in documents
    ]
    if as_json:
        _json(rows)
    else:
        out.print(f"{len(rows)} document(s) issued")
        if rows:
            out.print(render.simple_table(rows))


@projections_app.command("rebuild")
def projections_rebuild() -> None:
    """Drop the read models and replay the whole history into them."""
    from rich.progress import Progress

    with services() as svc:
        followers = svc.followers()
        head = svc.ledger.recorder.max_notification_id() or 0
        for follower in followers:
            follower.tracking.reset()  # type: ignore[attr-defined]
        with Progress(console=err) as progress:
            for follower in followers:
                task = progress.add_task(f"{follower.processor.name}", total=head)
                follower.catch_up(lambda n, task=task: progress.advance(task, n))  # type: ignore[misc]
                progress.update(task, completed=head)
    out.print(f"rebuilt {len(followers)} projections from {head} events")


@app.command()
def schemas(
    check: Annotated[bool, typer.Option("--check", help="Fail if the files are stale.")] = False,
    folder: Path = Path("schemas"),
) -> None:
    """Regenerate the JSON Schemas of every input and outbound message."""
    from ledger import schemas as schema_files

    if check:
        stale = schema_files.stale(folder)
        if stale:
            raise UserError(f"stale schemas: {', '.join(stale)} (run: ledger schemas)")
        out.print("schemas are current")
        return
    written = schema_files.write(folder)
    out.print(f"wrote {len(written)} schemas to {folder}/")


# ---------------------------------------------------------------------- positions

positions_app = typer.Typer(
    invoke_without_command=True,
    help="Kafka positions stored in PostgreSQL, per partition, against the broker's logs.",
)
app.add_typer(positions_app, name="positions")


@contextmanager
def _positions_services() -> Iterator[tuple[Services, Positions]]:
    settings = Settings()
    if settings.kafka_bootstrap is None:
        running = _running_broker(settings)
        if running is None:
            raise UserError(
                "LEDGER_KAFKA_BOOTSTRAP is unset and no `ledger serve` with an embedded"
                " broker is running: there is no log to compare the positions with"
            )
        settings.kafka_bootstrap = running
    with services(need_kafka=True, settings=settings) as svc:
        positions = svc.positions()
        try:
            yield svc, positions
        finally:
            positions.probe.close()


def _running_broker(settings: Settings) -> str | None:
    """The embedded broker of a running ``ledger serve`` (it writes its endpoints)."""
    state = settings.home / "serve.json"
    try:
        data = json.loads(state.read_text())
    except (OSError, ValueError):
        return None
    bootstrap_address = data.get("kafka_bootstrap")
    return bootstrap_address if isinstance(bootstrap_address, str) else None


@positions_app.callback()
def positions_show(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Each input partition: its log, stored position, log start and end, lag, and
    whether it is held (stored position outside the log: resolve with `reset`)."""
    if ctx.invoked_subcommand is not None:
        return
    with _positions_services() as (svc, positions):
        checked = positions.check(svc.input_partitions(positions))
    rows = [
        {
            "topic": p.topic,
            "partition": p.partition,
            "log": p.log_id if as_json else p.log_id[-12:],
            "epoch": p.epoch,
            "stored": "-" if p.stored is None else p.stored,
            "start": p.log_start,
            "end": p.log_end,
            "lag": p.lag,
            "state": "ok" if not p.held else f"HELD: {p.status}",
        }
        for p in checked.values()
    ]
    if as_json:
        _json(rows)
        return
    out.print(render.simple_table(rows))
    for p in checked.values():
        if p.held:
            err.print(f"held {p.topic}:{p.partition}: {p.reason}", highlight=False, markup=False)


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
    with _positions_services() as (svc, positions):
        tp = TopicPartition(topic, partition)
        if tp not in svc.input_partitions(positions):
            raise UserError(f"no input partition {topic}:{partition}")
        position = positions.check([tp])[tp]
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


# ---------------------------------------------------------------------- running


def _guarded(
    stop: threading.Event, failures: list[BaseException], name: str, target: Callable[[], None]
) -> threading.Thread:
    """Run a role in a thread; a crashed role stops the process: restart, don't limp."""

    def run() -> None:
        try:
            target()
        except BaseException as exc:
            log.exception("role_crashed", role=name)
            failures.append(exc)
            stop.set()

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread


def _stop(svc: Services) -> None:
    """Close the services; an embedded broker's logs are counted before they vanish."""
    try:
        svc.close_embedded_logs()
    except Exception:  # the count is for the record; stopping must not fail for it
        log.exception("embedded_broker_logs_not_closed")
    svc.close()


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
    """Run the service: consumers, projections, status publisher, period scheduler."""
    configure(json_lines=True)
    roles = set(role or ["consumer", "projections", "publisher", "scheduler"])
    unknown = roles - {"consumer", "projections", "publisher", "scheduler"}
    if unknown:
        raise UserError(f"unknown role(s): {', '.join(sorted(unknown))}")
    stop = threading.Event()
    failures: list[BaseException] = []

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("shutdown_requested", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    svc = bootstrap(
        Settings(),
        need_kafka=bool(roles & {"consumer", "publisher"}),
        announce=lambda m: log.info("embedded", message=m),
    )
    if svc.settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(svc.settings.metrics_port)
    if svc.kafka_bootstrap:
        svc.ensure_topics()

    threads = []
    processes = consumers or svc.settings.consumer_processes
    # The embedded broker's log dies with this process: consume what it holds first.
    drain_seconds = svc.settings.stop_drain_timeout.total_seconds() if svc.embedded_broker else 0.0
    if "consumer" in roles and processes > 1:
        assert svc.kafka_bootstrap is not None
        endpoints = Endpoints(
            svc.database_url, svc.kafka_bootstrap, svc.settings.metrics_port, drain_seconds
        )
        runs = functools.partial(run_consumer_processes, processes, endpoints, stop)
        threads.append(_guarded(stop, failures, "consumers", runs))
    elif "consumer" in roles:
        consumer = svc.consumer()
        threads.append(
            _guarded(stop, failures, "consumer", lambda: consumer.run(stop, drain_seconds))
        )
    if "projections" in roles:
        for follower in svc.followers():
            runs = functools.partial(follower.run, stop)
            threads.append(_guarded(stop, failures, follower.processor.name, runs))
    if "publisher" in roles:
        publisher = svc.status_publisher()
        threads.append(_guarded(stop, failures, "publisher", lambda: publisher.run(stop)))
    if "scheduler" in roles:

        def schedule() -> None:
            while not stop.is_set():
                documents = svc.close_periods()
                if documents:
                    log.info("scheduler_closed_periods", documents=len(documents))
                stop.wait(svc.settings.close_interval.total_seconds())

        threads.append(_guarded(stop, failures, "scheduler", schedule))
    log.info("serving", roles=sorted(roles))
    for thread in threads:
        thread.join()
    _stop(svc)
    log.info("stopped", failures=len(failures))
    if failures:
        raise typer.Exit(1)


@app.command()
def demo() -> None:
    """A generated month on embedded PostgreSQL and Kafka, end to end, printed."""
    import logging

    from ledger.demo import run_demo

    configure(json_lines=False, level=logging.WARNING)  # the demo's own lines say what happens
    if not out.is_terminal:
        out.width = 150  # tables stay readable when piped or captured
    run_demo(out, err)


def main() -> None:
    configure(json_lines=False)
    try:
        # Not standalone, a command's ``typer.Exit(code)`` comes back as the return value.
        code = app(standalone_mode=False)
    except (UserError, LedgerError) as exc:
        err.print(f"error: {exc}", highlight=False)
        sys.exit(1)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        err.print(f"error: invalid setting {where}: {first['msg']}", highlight=False)
        sys.exit(1)
    except psycopg.OperationalError as exc:
        err.print(f"error: database unavailable: {str(exc).splitlines()[0]}", highlight=False)
        sys.exit(1)
    except KafkaError as exc:
        err.print(f"error: Kafka unavailable: {exc}", highlight=False)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Exception as exc:  # usage errors arrive here in non-standalone mode
        # Click's ClickException, which recent typer releases vendor (typer._click)
        # instead of depending on click: recognised by what it offers, not its module.
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(code)
        raise
    if isinstance(code, int) and code:
        sys.exit(code)
