"""A history stored by an earlier ledger still loads: the same accounts, the same read
models, whatever the event classes' versions are today.

``fixtures/history_v1.json`` was written by ``write_history_fixture.py`` at the
commit it names, before ``EmailsRecorded`` became version 2 (the month's usage
and plan terms no longer stored on every batch): its stored events, each
account's state and every read model's rows, as that ledger made them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from ledger.emails.account import Account
from ledger.entrypoints.bootstrap import Services
from tests.conftest import MakeServices
from tests.integration.test_projections import _snapshot
from tests.support import utc

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "history_v1.json").read_text())


@dataclass(frozen=True)
class _Email:
    sent_at: datetime
    route: Literal["platform", "custom_smtp"] = "platform"


def platform_emails(count: int, at: datetime) -> list[_Email]:
    return [_Email(at)] * count


def _load(services: Services) -> None:
    services.ledger.recorder.insert_events(
        [
            StoredEvent(
                originator_id=UUID(e["originator_id"]),
                originator_version=e["originator_version"],
                topic=e["topic"],
                state=json.dumps(e["state"]).encode(),
            )
            for e in FIXTURE["events"]
        ]
    )


def _as_stored(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def test_the_stored_history_holds_the_versions_it_was_written_with() -> None:
    recorded = [e for e in FIXTURE["events"] if e["topic"].endswith(":Account.EmailsRecorded")]
    assert len(recorded) == 9
    assert all("class_version" not in e["state"] for e in recorded)
    assert all("months" in e["state"] for e in recorded)


def test_a_history_stored_before_today_loads_into_the_same_accounts(
    make_services: MakeServices,
) -> None:
    services = make_services()
    _load(services)
    transcoder = services.ledger.mapper.transcoder
    for uuid, expected in FIXTURE["accounts"].items():
        account: Any = services.ledger.repository.get(UUID(uuid))
        # Held since payments: what it is owed, derived from the documents it issued,
        # and (since dunning) what it chases of it.
        added = {"receivables", "credit", "collections", "dunning_state", "delinquent", "notices"}
        state = {k: v for k, v in vars(account).items() if k not in {"_pending_events", *added}}
        # Compared as today's ledger stores them: values stored in an older form
        # (money, plans) decode to the same values, encoded the same way today.
        written_then = transcoder.decode(json.dumps(expected).encode())
        today = json.loads(transcoder.encode(state))
        assert today == json.loads(transcoder.encode(written_then)), account.account_id
        assert account.credit == []
        issued = [*getattr(account, "documents", []), *getattr(account, "invoices", [])]
        proformas = list(getattr(account, "open_proformas", {})) + list(
            getattr(account, "replaced", {})
        )
        assert set(account.receivables) >= set(issued) | set(proformas), account.account_id


def test_a_history_stored_before_today_projects_to_the_same_read_models(
    make_services: MakeServices,
) -> None:
    services = make_services()
    _load(services)
    read_models = services.read_models()
    read_models.catch_up()
    assert _as_written_then(_snapshot(services)) == FIXTURE["tables"]
    # One event at a time, as a live stream is followed: the same rows.
    read_models.reset()
    read_models.rebuild(batch_size=1)
    assert _as_written_then(_snapshot(services)) == FIXTURE["tables"]


def _as_written_then(tables: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The tables and columns the fixture has (those added since are tested on their own)."""
    stored = _as_stored(tables)
    return {
        name: [{k: row[k] for k in rows[0]} for row in stored[name]] if rows else stored[name]
        for name, rows in FIXTURE["tables"].items()
    }


def test_emails_recorded_today_carry_on_from_a_history_stored_before(
    make_services: MakeServices,
) -> None:
    services = make_services()
    _load(services)
    ledger = services.ledger
    b = ledger.get_account("b")
    assert isinstance(b, Account)
    # October was documented with 10,000 platform emails (9,000 on the volume plan,
    # 300 after the change to email-starter, 700 late), last terms email-starter.
    # Five more late ones are positions 10,001-10,005: tier 2, 5 x 0.0008 = 0.0040.
    # January 2027 (open, fee 10.00 already debited): 1,002 emails, 1,000 included,
    # 2 x 0.0010 = 0.0020.
    b.record_emails(
        [*platform_emails(5, utc(2026, 10, 30)), *platform_emails(1002, utc(2027, 1, 10))]
    )
    ledger.save(b)
    assert b.debited.amount == Decimal("59.6000") + Decimal("0.0040") + Decimal("0.0020")
    assert [(str(late.month), late.count, late.amount) for late in b.pending_late] == [
        ("2026-10", 5, Decimal("0.0040"))
    ]
    ledger.evict([b.id])
    assert _state(ledger.get_account("b")) == _state(b)  # replayed from the store
    services.read_models().catch_up()
    rows = {
        r["month"]: r for r in _snapshot(services)["monthly_usage"] if r["account_uuid"] == b.id
    }
    assert (rows["2026-10"]["late_emails"], rows["2026-10"]["usage_amount"]) == (
        705,
        Decimal("4.6040"),
    )
    january = rows["2027-01"]
    assert (
        january["platform_emails"],
        january["included_emails"],
        january["charged_emails"],
        january["usage_amount"],
    ) == (1002, 1000, 2, Decimal("0.0020"))


def _state(account: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(account).items() if k != "_pending_events"}
