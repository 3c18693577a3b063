"""``ledger audit``: what an auditor runs to check the books against their history.

``verify`` replays the history into scratch read models and compares every row
with the live ones (``projections/verify.py``). ``chain`` recomputes the hash
chain over every stored event and names the first link that is not as written
(``commands/chain.py``); ``--against`` also proves that a head published
earlier is still a prefix of today's chain. ``head`` prints today's head, as
published on the audit topic. ``backfill`` links the history stored before the
chain existed (the one-off after the upgrade).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from ledger.entrypoints.cli.app import JsonFlag, UserError, app, err, out, print_json, services
from ledger.entrypoints.cli.escaping import safe

audit_app = typer.Typer(
    no_args_is_help=True,
    help="Check the books against their history: the hash chain over stored events.",
    rich_markup_mode=None,
)
app.add_typer(audit_app, name="audit")


@contextmanager
def _advancing(what: str, total: int, *, shown: bool) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr advanced by the count given, when ``shown`` and stderr is
    a terminal (nothing in pipes, logs and JSON runs): ``None`` otherwise."""
    if not (shown and err.is_terminal):
        yield None
        return
    from rich.progress import Progress

    with Progress(console=err, transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda n: bar.advance(task, n)


Against = Annotated[
    str | None,
    typer.Option(
        "--against",
        metavar="POSITION:HASH",
        help="A head published earlier (ledger audit head): prove it is a prefix of today's chain.",
    ),
]


@audit_app.command("chain")
def audit_chain(against: Against = None, as_json: JsonFlag = False) -> None:
    """Recompute the hash chain from the stored events; exit 1 at the first break."""
    from commands.chain import Head

    try:
        published = Head.parse(against) if against is not None else None
    except ValueError as exc:
        raise UserError(str(exc)) from None
    with services() as svc:
        recorder = svc.store
        total = recorder.max_notification_id() or 0
        started = time.perf_counter()
        with _advancing("links", total, shown=not as_json) as advance:
            walked = recorder.walk_chain(published, advance)
        seconds = time.perf_counter() - started
    rate = walked.checked / seconds if seconds > 0 else 0.0
    broken = walked.broken
    if as_json:
        print_json(
            {
                "intact": broken is None,
                "checked": walked.checked,
                "head": str(walked.head) if walked.head else None,
                "broken_at": broken.position if broken else None,
                "why": broken.why if broken else None,
                "against": str(published) if published else None,
                "links_per_s": round(rate),
            }
        )
    elif broken is None:
        # One fact a line: the head (69 characters and more) fits 80 columns alone.
        out.print(f"chain intact: {walked.checked:,} events", highlight=False)
        if walked.head:
            out.print(f"head {walked.head}", highlight=False, soft_wrap=True)
        if published:
            out.print(f"the head published at {published.position} is a prefix of it")
        err.print(f"{rate:,.0f} links/s", highlight=False)
    else:
        out.print(
            f"chain broken at position {broken.position}: {broken.why}"
            f" ({walked.checked:,} events before it are intact)",
            highlight=False,
        )
    if broken is not None:
        raise typer.Exit(1)


@audit_app.command("head")
def audit_head(as_json: JsonFlag = False) -> None:
    """Today's chain head, POSITION:HASH: what the ledger publishes on the audit topic."""
    with services() as svc:
        head = svc.store.chain_head()
    if head is None:
        raise UserError("the chain is empty: no event is stored yet")
    if as_json:
        print_json({"position": head.position, "hash": head.hash.hex()})
    else:
        out.print(str(head), soft_wrap=True, highlight=False)


@audit_app.command("backfill")
def audit_backfill() -> None:
    """Link the events stored before the chain existed (once, after upgrading).

    Holds the events table's lock while it runs: writers wait for it.
    """
    with services(write=True) as svc:
        started = time.perf_counter()
        linked = svc.store.backfill_chain()
        seconds = time.perf_counter() - started
    from ledger.entrypoints.cli.app import log

    log.info("chain_backfilled", events=linked, seconds=round(seconds, 2))
    out.print(f"linked {linked:,} events stored before the chain ({seconds:.1f}s)")


AccountOption = Annotated[str | None, typer.Option("--account", help="Only this account's rows.")]


@audit_app.command("verify")
def audit_verify(account: AccountOption = None, as_json: JsonFlag = False) -> None:
    """Replay the history into scratch read models and compare every row with the
    live ones; exit 1 on any difference."""
    from ledger.opening import account_uuid
    from projections.verify import scratch, scratch_schema, verify

    with services() as svc:
        if account is not None and svc.ledger.find_account(account) is None:
            raise UserError(f"unknown account {account!r}")
        schema = scratch_schema()
        total = svc.ledger.recorder.max_notification_id() or 0
        started = time.perf_counter()
        with scratch(svc.database_url, schema):
            replay, close = svc.replayed_read_models(schema)
            try:
                live = svc.read_models().projections
                key = str(account_uuid(account)) if account else None
                with _advancing("replaying", total, shown=not as_json) as advance:
                    found = verify(svc.database_url, svc.ledger.name, live, replay, key, advance)
            finally:
                close()
        seconds = time.perf_counter() - started
    rate = found.replayed_events / seconds if seconds > 0 else 0.0
    if as_json:
        print_json(
            {
                "identical": not found.differences,
                "replayed_events": found.replayed_events,
                "events_per_s": round(rate),
                "positions": [
                    {"read_model": p.read_model, "live": p.live, "replayed": p.replayed}
                    for p in found.positions
                ],
                "differences": [
                    {"table": d.table, "key": d.key, "live": d.live, "replayed": d.replayed}
                    for d in found.differences
                ],
            }
        )
    else:
        _say_verified(found, rate)
    if found.differences:
        raise typer.Exit(1)


def _say_verified(found: Any, rate: float) -> None:
    for position in found.positions:
        lag = f" ({position.behind:,} events behind)" if position.behind else ""
        out.print(
            f"{position.read_model}: live at {position.live:,}, replayed to"
            f" {position.replayed:,}{lag}",
            highlight=False,
        )
    for difference in found.differences:
        key = ", ".join(f"{k}={v}" for k, v in difference.key.items())
        # Rows hold upstream text: shown as text (control characters as escapes).
        for line in (
            f"differs: {difference.table} [{key}]",
            f"  live:     {_row(difference.live)}",
            f"  replayed: {_row(difference.replayed)}",
        ):
            out.print(safe(line), highlight=False, soft_wrap=True)
    verdict = (
        f"{len(found.differences)} difference(s)"
        if found.differences
        else f"identical: {found.tables} tables"
    )
    out.print(f"{verdict}; {found.replayed_events:,} events replayed", highlight=False)
    err.print(f"{rate:,.0f} events/s", highlight=False)


def _row(values: dict[str, Any] | None) -> str:
    if values is None:
        return "(no row)"
    return ", ".join(f"{k}={v}" for k, v in values.items())


YearOption = Annotated[int, typer.Option("--year", help="The calendar year of the numbers.")]


@audit_app.command("numbering")
def audit_numbering(year: YearOption, as_json: JsonFlag = False) -> None:
    """The year's document numbers from history: each allocated number on exactly one
    document, none beyond; exit 1 on a gap, a duplicate or an unallocated number."""
    from projections.numbering_audit import audit_year

    if not 1970 <= year <= 9999:
        raise UserError(f"not a year: {year}")
    with services() as svc:
        found = audit_year(svc.ledger, year)
    if as_json:
        print_json(
            {
                "year": found.year,
                "allocated": found.allocated,
                "sound": found.sound,
                "gaps": found.gaps,
                "duplicates": found.duplicates,
                "unallocated": found.unallocated,
            }
        )
    else:
        verdict = "; every one on exactly one document" if found.sound else ""
        out.print(f"{year}: {found.allocated:,} numbers allocated{verdict}", highlight=False)
        for number in found.gaps:
            out.print(f"gap: {number} is on no document", highlight=False)
        for number, owners in found.duplicates.items():
            out.print(safe(f"duplicate: {number} is on {', '.join(owners)}"), highlight=False)
        for number in found.unallocated:
            out.print(f"unallocated: {number} was never drawn from the sequence", highlight=False)
    if not found.sound:
        raise typer.Exit(1)


AsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", help="RFC 3339; periods ended before it count (default: now)."),
]
GraceOption = Annotated[
    str | None,
    typer.Option(help="The close's grace, e.g. 6h (default LEDGER_CLOSE_GRACE)."),
]


@audit_app.command("unbilled")
def audit_unbilled(
    as_of: AsOfOption = None, grace: GraceOption = None, as_json: JsonFlag = False
) -> None:
    """Nothing accepted and never billed: every accepted email on exactly one document
    line, every period past its close grace documented, gapless numbering; exit 1 on
    any finding."""
    from datetime import UTC, datetime

    from ledger.entrypoints.cli.app import parse_duration, parse_time
    from projections.unbilled_audit import audit_unbilled as audit

    now = datetime.now(UTC)
    when = parse_time(as_of) if as_of is not None else now
    if when > now:
        raise UserError(f"--as-of {as_of} is in the future: the books are audited up to now")
    with services() as svc:
        close_grace = parse_duration(grace) if grace is not None else svc.settings.close_grace
        found = audit(svc.ledger, when, close_grace)
    if as_json:
        print_json(
            {
                "sound": found.sound,
                "as_of": found.as_of.isoformat(),
                "grace_seconds": found.grace.total_seconds(),
                "email_accounts": found.accounts,
                "emails": found.emails,
                "on_lines": found.on_lines,
                "waiting": found.waiting,
                "late_custom_smtp": found.late_smtp,
                "years": list(found.years),
                "findings": [
                    {"account_id": f.account_id, "kind": f.kind, "detail": f.detail}
                    for f in found.findings
                ],
            }
        )
    else:
        _say_unbilled(found)
    if not found.sound:
        raise typer.Exit(1)


def _say_unbilled(found: Any) -> None:
    lines = [
        f"as of {found.as_of.isoformat(timespec='seconds')}, grace {found.grace}:",
        f"{found.emails:,} emails accepted by {found.accounts:,} email accounts",
        f"  {found.on_lines:,} on document lines",
        f"  {found.waiting:,} waiting for their document (open months, late usage)",
    ]
    if found.late_smtp:
        lines.append(f"  {found.late_smtp:,} late custom-SMTP emails (never charged, no line)")
    years = ", ".join(str(y) for y in found.years) or "none"
    lines.append(f"numbering checked for: {years}")
    for finding in found.findings:
        lines.append(f"{finding.kind}: {finding.account_id}: {finding.detail}")
    lines.append(
        "sound: nothing accepted and never billed"
        if found.sound
        else f"{len(found.findings)} finding(s)"
    )
    for line in lines:
        out.print(safe(line), highlight=False)


@app.command("export")
def export(
    directory: Annotated[str, typer.Argument(metavar="DIR", help="Made if needed; must be empty.")],
    fmt: Annotated[
        str, typer.Option("--format", metavar="jsonl|csv|parquet", help="The files' format.")
    ] = "jsonl",
    account: AccountOption = None,
    recorded_from: Annotated[
        str | None, typer.Option("--from", help="Events recorded at or after (RFC 3339).")
    ] = None,
    recorded_to: Annotated[
        str | None, typer.Option("--to", help="Events recorded before (RFC 3339).")
    ] = None,
) -> None:
    """Take the books away: events (both times, chain links), documents with lines,
    payments and allocations, dedupe keys, and a manifest (row counts, SHA-256, chain
    head); check them with ledger audit check-export."""
    from pathlib import Path

    from ledger.entrypoints.cli.app import parse_time
    from projections.export import Scope, export_books
    from projections.export_files import FORMATS

    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    target = Path(directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UserError(f"{directory} is not an empty directory")
    scope = Scope(
        account,
        parse_time(recorded_from) if recorded_from else None,
        parse_time(recorded_to) if recorded_to else None,
    )
    with services() as svc:
        if account is not None and svc.ledger.find_account(account) is None:
            raise UserError(f"unknown account {account!r}")
        total = svc.ledger.recorder.max_notification_id() or 0
        started = time.perf_counter()
        with _advancing("exporting", total, shown=True) as advance:
            manifest = export_books(svc.ledger, target, fmt, scope, advance)
        seconds = time.perf_counter() - started
    for name, figures in manifest["files"].items():
        out.print(f"{name:<24} {figures['rows']:>12,} rows", highlight=False)
    out.print(f"chain head {manifest['chain_head']}", highlight=False, soft_wrap=True)
    err.print(f"exported in {seconds:.1f}s", highlight=False)


@audit_app.command("check-export")
def audit_check_export(
    directory: Annotated[str, typer.Argument(metavar="DIR", help="What ledger export wrote.")],
    as_json: JsonFlag = False,
) -> None:
    """Check an export from its files alone (no database): the manifest's counts and
    SHA-256, every document's totals from its lines, the chain's links; exit 1 on any
    finding."""
    from pathlib import Path

    from projections.export_check import ExportUnreadable, check_export

    try:
        found = check_export(Path(directory))
    except ExportUnreadable as exc:
        raise UserError(str(exc)) from None
    if as_json:
        print_json(
            {
                "sound": found.sound,
                "format": found.format,
                "files": found.files,
                "documents": found.documents,
                "events": found.events,
                "complete": found.complete,
                "chain_head": found.head,
                "findings": found.findings,
            }
        )
    else:
        chain = "link after link to the manifest's head" if found.complete else "each link alone"
        for line in (
            f"{found.files} files ({found.format}): rows and SHA-256 as the manifest lists",
            f"{found.documents:,} documents: totals recomputed from their lines",
            f"{found.events:,} events: chain checked, {chain}",
            *found.findings,
            "sound" if found.sound else f"{len(found.findings)} finding(s)",
        ):
            out.print(safe(line), highlight=False, soft_wrap=True)
    if not found.sound:
        raise typer.Exit(1)


#: Messages printed under each event; --export writes them all.
SHOWN_MESSAGES = 10


@audit_app.command("line")
def audit_line(
    number: Annotated[str, typer.Argument(help="The document's number (or proforma id).")],
    line: Annotated[int, typer.Argument(help="The line, 1-based, as ledger invoice lists it.")],
    export: Annotated[
        str | None,
        typer.Option("--export", metavar="FILE", help="Write every message (.csv or .jsonl)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """A document line back to its sources: the ledger events and the upstream emails
    (CloudEvent source and id, message id, Kafka coordinates) it counts; exit 1 if
    they do not add up to the line's quantity."""
    from projections.line_audit import UnknownLine, account_of, line_sources

    if export is not None and not export.endswith((".csv", ".jsonl")):
        raise UserError(f"--export {export}: name a .csv or a .jsonl file")
    from ledger.line_sources import NotAnEmailLine

    with services() as svc:
        try:
            found = line_sources(svc.ledger, account_of(svc.ledger, number), number, line)
        except UnknownLine as exc:
            raise UserError(str(exc)) from None
        except NotAnEmailLine as exc:
            raise UserError(f"{number} line {line} is a {exc} line: it counts no email") from None
    rows = [
        {"event_version": e.share.version, "route": e.share.route, **m}
        for e in found.events
        for m in e.messages
    ]
    if export is not None:
        _write_messages(export, rows)
    adds_up = found.adds_up
    if as_json:
        print_json(
            {
                "number": number,
                "line": line,
                "kind": found.line.kind,
                "description": found.line.description,
                "quantity": found.line.quantity,
                "fee_event_version": found.fee_version,
                "events": [
                    {
                        "version": e.share.version,
                        "effective_at": e.effective_at,
                        "route": e.share.route,
                        "emails": e.share.count,
                        "from": e.share.start + 1,
                        "to": e.share.stop,
                        "in_arrival_order": e.ordered,
                    }
                    for e in found.events
                ],
                "counted": found.counted,
                "messages_found": found.found,
                "adds_up": adds_up,
                "messages": rows if export is None else len(rows),
            }
        )
    else:
        _say_line(found, adds_up)
    if not adds_up:
        raise typer.Exit(1)


def _say_line(found: Any, adds_up: bool) -> None:
    head = f"{found.document.number} line {found.line_no}: {found.line.description}"
    lines = [head, f"quantity {found.line.quantity:,}"]
    if found.line.kind == "fee":
        lines.append(f"the month's fee, recorded by event {found.fee_version} (no email)")
    for share in found.events:
        s = share.share
        route = "custom-SMTP" if s.route == "custom_smtp" else "platform"
        lines.append(f"event {s.version}, {share.effective_at}:")
        lines.append(f"  {s.count:,} emails, {s.start + 1:,} to {s.stop:,} of its {route} emails")
        shown = share.messages[:SHOWN_MESSAGES]
        # What every message shares is said once; each line fits 80 columns.
        for source, topic in dict.fromkeys((m["source"], m["kafka_topic"]) for m in shown):
            lines.append(f"  from {source} on {topic}:")
            for m in shown:
                if (m["source"], m["kafka_topic"]) == (source, topic):
                    where = f"p{m['kafka_partition']}@{m['kafka_offset']}"
                    lines.append(f"    {m['event_id']}  {m['message_id']}  {where}")
        if len(share.messages) > SHOWN_MESSAGES:
            lines.append(f"  ... {len(share.messages) - SHOWN_MESSAGES:,} more (--export FILE)")
        if not share.ordered:
            lines.append("  (stored before Kafka coordinates were kept: order within it unknown)")
    if found.line.kind != "fee":
        same = found.counted == found.line.quantity
        verdict = "= the line's quantity" if same else f"!= the line's {found.line.quantity:,}"
        lines.append(f"{found.counted:,} emails from {len(found.events)} event(s) {verdict}")
        if found.found != found.counted:
            lines.append(f"{found.counted - found.found:,} of them have no accepted message")
    for text in lines:
        out.print(safe(text), highlight=False, soft_wrap=True)


def _write_messages(path: str, rows: list[dict[str, Any]]) -> None:
    import csv
    import json

    columns = ["event_version", "route", "source", "event_id", "message_id"]
    columns += ["kafka_topic", "kafka_partition", "kafka_offset"]
    with open(path, "w", encoding="utf-8", newline="") as file:
        if path.endswith(".csv"):
            writer = csv.DictWriter(file, columns)
            writer.writeheader()
            writer.writerows(rows)
        else:
            file.writelines(json.dumps(row) + "\n" for row in rows)
