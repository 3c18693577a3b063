"""ledger: run the service, close periods, and read the books.

User errors (unknown account, bad time, unreachable database) print one line
on stderr and exit non-zero; tracebacks are for bugs. A read says on stderr
when the read model it reads is behind the ledger; a write brings the read
models up to date before it returns.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, NoReturn

import psycopg
import structlog
import typer
from eventsourcing.persistence import InterfaceError, PersistenceError
from eventsourcing.persistence import OperationalError as PersistenceOperationalError
from kafka import TopicPartition
from kafka.errors import KafkaError
from pydantic import ValidationError
from rich.console import Console, Group

from consumers.assignment import POSITION_CHECK_SECONDS
from consumers.positions import Positions, load_partition_log
from consumers.process_tuning import tune_consumer_process
from consumers.processes import Endpoints, run_consumer_processes
from ledger import render, shutdown, status_file
from ledger.account import Account
from ledger.bootstrap import Services, bootstrap
from ledger.contacts_account import contacts_as_of
from ledger.errors import LedgerError
from ledger.logging import configure
from ledger.render import safe
from ledger.settings import Settings, iso_duration
from projections.writer_lock import ProjectionsBusy, projections_writer

# Plain help: typer's rich help shows every flag as taking a value ("--json <bool>").
app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, rich_markup_mode=None)
projections_app = typer.Typer(
    no_args_is_help=True, help="Maintain the read models.", rich_markup_mode=None
)
app.add_typer(projections_app, name="projections")
dead_letters_app = typer.Typer(help="Refused messages: list them, replay them.")
app.add_typer(dead_letters_app, name="dead-letters")
# No emoji codes: ":warning:" in an upstream id is text, not a picture.
out = Console(emoji=False)
err = Console(stderr=True, emoji=False)
log = structlog.get_logger("ledger.cli")

JsonFlag = Annotated[bool, typer.Option("--json", is_flag=True, help="Machine-readable output.")]


class UserError(Exception):
    pass


def _announce(message: str) -> None:
    err.print(f"[dim]{safe(message)}[/dim]", soft_wrap=True)


def _note(message: str) -> None:
    err.print(f"note: {message}", highlight=False, soft_wrap=True)


@contextmanager
def services(
    *, need_kafka: bool = False, write: bool = False, settings: Settings | None = None
) -> Iterator[Services]:
    svc = bootstrap(settings or Settings(), need_kafka=need_kafka, announce=_announce)
    try:
        if write and svc.database_read_only():
            raise UserError(READ_ONLY)
        yield svc
    finally:
        svc.close()


READ_ONLY = "the database is read-only (a standby, or default_transaction_read_only is on)"


def _json(data: Any) -> None:
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
}


def _say_if_behind(svc: Services, *names: str) -> None:
    """One line on stderr per read model that has not applied every stored event."""
    running = _serve_running(svc.settings)
    for follower in svc.followers():
        name = follower.processor.name
        if name not in names:
            continue
        behind = follower.behind()
        if not behind:
            continue
        remedy = (
            f"ledger serve (pid {running.pid}) is applying them"
            if running and "projections" in running.roles
            else "run ledger serve, or ledger projections catch-up"
        )
        _note(f"{READ_MODELS[name]} are {behind:,} event(s) behind the ledger; {remedy}")


def _bring_read_models_up_to_date(svc: Services, timeout: float = 10.0) -> None:
    """After a write: apply it to the read models before returning.

    In this process when no one else writes them; else (``serve`` does) wait,
    with a deadline, until that writer has applied everything stored so far.
    """
    followers = svc.followers()
    try:
        with projections_writer(svc.database_url, svc.settings.database_schema):
            for follower in followers:
                follower.catch_up()
            return
    except ProjectionsBusy:
        pass
    deadline = time.monotonic() + timeout
    while any(f.behind() for f in followers) and time.monotonic() < deadline:
        time.sleep(0.1)
    _say_if_behind(svc, *READ_MODELS)


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
        _say_if_behind(svc, "balances")
        row = svc.reports().balance(account)
    _json(row) if as_json else out.print(render.balance_table([row]))


@app.command()
def balances(as_json: JsonFlag = False) -> None:
    """Balances of all accounts."""
    with services() as svc:
        _say_if_behind(svc, "balances")
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
            _say_if_behind(svc, "balances", "contacts")
            rows = reports.allowance_usage(account, month)
            _json(rows) if as_json else out.print(render.allowance_table(rows))
            return
        _say_if_behind(svc, "balances", "monthly_usage")
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
        render.simple_table(rows, title=f"Billable contacts of {safe(account)} at {at.isoformat()}")
    )
    out.print(f"{len(rows):,} billable contact(s)")
    if not consistent:
        raise UserError(INCONSISTENT_CONTACTS.format(account=account))


#: A broken invariant, not a refusal: nothing to retry; what to look at, and to report.
INCONSISTENT_CONTACTS = (
    "the contacts rebuilt from the history of {account!r} differ from the stored contact"
    " versions renewals count from: the ledger is inconsistent; compare ledger history"
    " and ledger trace for the account, and report it"
)


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
    with services(write=True) as svc:
        invoice = svc.pay_proforma(account, proforma, parse_time(at) if at else None)
        _bring_read_models_up_to_date(svc)
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
        out.print(f"invoice {safe(invoice.number)} issued for proforma {safe(proforma)}")


@app.command()
def invoices(account: str, as_json: JsonFlag = False) -> None:
    """Receipts, invoices and proformas of an account, with their status."""
    with services() as svc:
        _say_if_behind(svc, "balances", "documents")
        rows = svc.reports().documents_of(account)
    _json(rows) if as_json else out.print(render.documents_table(rows))


@app.command()
def invoice(number: str, as_json: JsonFlag = False) -> None:
    """One receipt, invoice or proforma (by number or proforma id) with its lines."""
    with services() as svc:
        _say_if_behind(svc, "documents")
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
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", is_flag=True, help="Show what would be issued; issue nothing."),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Issue receipts/invoices for every month that ended at least GRACE before AS_OF.

    Documents are numbered and irreversible: AS_OF may not be later than the
    clock (plus LEDGER_MAX_FUTURE_SKEW), nor GRACE negative.
    """
    when = parse_time(as_of)
    with services(write=not dry_run) as svc:
        if grace is not None:
            svc.settings.close_grace = parse_duration(grace)
        svc.check_close(when)
        with _progress("closing accounts") as progress:
            documents = svc.close_periods(when, dry_run=dry_run, progress=progress)
        if not dry_run:
            _bring_read_models_up_to_date(svc)
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
        out.print(f"{len(rows)} document(s) {'would be issued (dry run)' if dry_run else 'issued'}")
        if rows:
            out.print(render.simple_table(rows))


@contextmanager
def _progress(what: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr when it is a terminal (nothing in pipes and logs)."""
    if not err.is_terminal:
        yield lambda _done, _total: None
        return
    from rich.progress import Progress

    with Progress(console=err, transient=True) as bar:
        task = bar.add_task(what, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


PROJECTIONS_BUSY = (
    "another process is writing the read models of schema {schema!r} (ledger serve,"
    " or a rebuild); {advice}"
)


@projections_app.command("rebuild")
def projections_rebuild() -> None:
    """Drop the read models and replay the whole history into them.

    Refused while ledger serve runs its projections role: stop it first.
    """
    from rich.progress import Progress

    with services(write=True) as svc, _sole_writer(svc, "stop it, then rebuild"):
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


@projections_app.command("catch-up")
def projections_catch_up() -> None:
    """Apply the stored events the read models have not applied yet (what serve does)."""
    with services(write=True) as svc, _sole_writer(svc, "it keeps them up to date"):
        applied = {f.processor.name: f.catch_up() for f in svc.followers()}
    out.print(", ".join(f"{name}: {count:,} event(s) applied" for name, count in applied.items()))


@contextmanager
def _sole_writer(svc: Services, advice: str) -> Iterator[None]:
    schema = svc.settings.database_schema
    try:
        with projections_writer(svc.database_url, schema):
            yield
    except ProjectionsBusy:
        raise UserError(PROJECTIONS_BUSY.format(schema=schema, advice=advice)) from None


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
        running = _serve_running(settings)
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
        _json(
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


# ---------------------------------------------------------------------- running


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
        metrics = _start_metrics(svc.settings)
        if svc.kafka_bootstrap:
            svc.ensure_topics()
        if "projections" in roles:
            stack.enter_context(_sole_writer(svc, "one process writes them: stop it first"))
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
    home = svc.settings.home
    current = _serve_running(svc.settings)
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
    return threads


def _serve_running(settings: Settings) -> status_file.ServeStatus | None:
    """The serve named by LEDGER_HOME/serve.json, if that process is alive."""
    try:
        current = status_file.read(settings.home)
    except (ValueError, TypeError):
        return None  # half-written by hand or by an older version: not a live serve
    return current if current is not None and status_file.alive(current) else None


@app.command()
def status(as_json: JsonFlag = False) -> None:
    """Whether ledger serve runs here (LEDGER_HOME), and its endpoints: database,
    Kafka bootstrap (publish to it), metrics. Exit code 1 when it does not run."""
    from ledger.embedded import postgres_pid

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
        _json(report)
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
    from ledger.embedded import stop_postgres

    settings = Settings()
    running = _serve_running(settings)
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
    import logging

    from ledger.demo import run_demo

    configure(json_lines=False, level=logging.WARNING)  # the demo's own lines say what happens
    if not out.is_terminal:
        out.width = 150  # tables stay readable when piped or captured
    # Its own books, under LEDGER_HOME when that is set (else the project's .ledger/demo).
    home = Settings().home / "demo" if "LEDGER_HOME" in os.environ else None
    run_demo(out, err, home)


def _fail(message: str, code: int = 1) -> NoReturn:
    """The one line a user error prints: upstream text in it is shown, never obeyed."""
    err.print(f"error: {safe(message)}", highlight=False, soft_wrap=True)
    sys.exit(code)


def _database_problem(exc: Exception) -> str | None:
    """What a database failure means for the user, or None if it is a bug."""
    cause = exc if isinstance(exc, psycopg.Error) else exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if sqlstate == READ_ONLY_SQLSTATE:
        return READ_ONLY
    if sqlstate == INVALID_SCHEMA_SQLSTATE:
        return f"{first} (LEDGER_DATABASE_SCHEMA)"
    if isinstance(exc, psycopg.OperationalError | PersistenceOperationalError | InterfaceError):
        return f"database unavailable: {first}"
    return None


READ_ONLY_SQLSTATE = "25006"
INVALID_SCHEMA_SQLSTATE = "3F000"


def main() -> None:
    # A broker problem surfaces as the command's one-line error; kafka-python's own
    # lines (a metadata refresh cancelled at close, a reconnect) are noise here.
    configure(json_lines=False, kafka_level=logging.CRITICAL)
    try:
        # Not standalone, a command's ``typer.Exit(code)`` comes back as the return value.
        code = app(standalone_mode=False)
    except (UserError, LedgerError) as exc:
        _fail(str(exc))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        _fail(f"invalid setting {where}: {first['msg']}")
    except (psycopg.Error, PersistenceError) as exc:
        problem = _database_problem(exc)
        if problem is None:
            raise
        _fail(problem)
    except KafkaError as exc:
        _fail(f"Kafka unavailable: {exc}")
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Exception as exc:  # usage errors arrive here in non-standalone mode
        # Click's ClickException, which recent typer releases vendor (typer._click)
        # instead of depending on click: recognised by what it offers, not its module.
        message, code = getattr(exc, "format_message", None), getattr(exc, "exit_code", None)
        if not (callable(message) and isinstance(code, int)):
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":  # ``ledger`` alone: the help
            exc.show()  # type: ignore[attr-defined]
            sys.exit(code)
        context = getattr(exc, "ctx", None)
        hint = f" (see {context.command_path} --help)" if context is not None else ""
        _fail(f"{message()}{hint}", code)
    if isinstance(code, int) and code:
        sys.exit(code)
