"""Input the ledger refused or holds back: dead letters (and their replay) and
facts parked until their account opens."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ledger.entrypoints.cli import render_refused
from ledger.entrypoints.cli.app import (
    JsonFlag,
    ReasonFilter,
    TopicFilter,
    UserError,
    app,
    dead_letters_app,
    out,
    print_json,
    services,
)


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
        print_json(
            {
                "total": total,
                "matching": matching,
                "dead_letters": [render_refused.dead_letter_view(row) for row in rows],
            }
        )
        return
    out.print(render_refused.dead_letter_table(rows))
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
        print_json({"queued": [{"dead_letter_id": d, "parked_id": p} for d, p in queued]})
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
    from ledger.periods import iso_duration

    with services() as svc:
        rows = svc.store.parked_by_account(account)
        bound = svc.settings.park_max_age
    total = sum(row["facts"] for row in rows)
    if as_json:
        print_json({"total": total, "accounts": rows})
        return
    out.print(render_refused.parked_table(rows))
    out.print(
        f"{total:,} fact(s) parked for {len(rows):,} account(s): applied when the account opens,"
        f" dead-lettered when not opened within {iso_duration(bound)} of the event",
        highlight=False,
    )
