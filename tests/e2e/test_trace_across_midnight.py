"""A batch across midnight of the 1st, through the real broker: one event per month,
and ``ledger trace`` names each email's own month's document."""

from __future__ import annotations

import json

from tests.conftest import MakeServices
from tests.support import Upstreams, catch_up, drain, ledger_command, ledger_env, utc


def message_id(message: object) -> str:
    value: bytes = message.value  # type: ignore[attr-defined]
    return str(json.loads(value)["data"]["message_id"])


def test_emails_either_side_of_midnight_in_one_batch_trace_to_their_own_months_invoice(
    make_services: MakeServices,
) -> None:
    services = make_services()
    up = Upstreams(services)
    up.publish([up.opened("edge", utc(2026, 11, 1))])
    drain(services)
    # Published together, so the consumer takes them in one partition batch.
    november = [up.email("edge", utc(2026, 11, 30, 23, 59, 59)) for _ in range(4)]
    december = [up.email("edge", utc(2026, 12, 1, 0, 0, 1)) for _ in range(3)]
    up.publish([november[0], december[0], *november[1:], *december[1:]])
    up.close()
    drain(services)

    recorder = services.ledger.process_recorder
    nov_row, dec_row = (
        recorder.trace_message("edge", message_id(m))[0]  # type: ignore[attr-defined]
        for m in (november[0], december[0])
    )
    # one transaction (PostgreSQL's now() is the transaction's start) ...
    assert nov_row["recorded_at"] == dec_row["recorded_at"]
    # ... and two events, one per month, each dated by its own emails
    assert dec_row["originator_version"] == nov_row["originator_version"] + 1
    events = {e.originator_version: e for e in services.ledger.history("edge")}
    nov_event, dec_event = (events[r["originator_version"]] for r in (nov_row, dec_row))
    assert [str(e.month) for e in nov_event.entries] == ["2026-11"]  # type: ignore[attr-defined]
    assert nov_event.effective_at == utc(2026, 11, 30, 23, 59, 59)  # type: ignore[attr-defined]
    assert [str(e.month) for e in dec_event.entries] == ["2026-12"]  # type: ignore[attr-defined]
    assert dec_event.effective_at == utc(2026, 12, 1, 0, 0, 1)  # type: ignore[attr-defined]
    for emails, version in ((november, nov_row), (december, dec_row)):
        for email in emails:
            [row] = recorder.trace_message("edge", message_id(email))  # type: ignore[attr-defined]
            assert row["originator_version"] == version["originator_version"]

    [nov_invoice] = services.close_periods(utc(2026, 12, 1, 7))
    [dec_invoice] = services.close_periods(utc(2027, 1, 1, 7))
    catch_up(services)
    assert (nov_invoice.number, str(nov_invoice.period)) == ("2026-000001", "2026-11")
    assert (dec_invoice.number, str(dec_invoice.period)) == ("2027-000001", "2026-12")
    # email-starter: fee 10.00, the first 1,000 emails of a month included
    assert [(line.kind, line.quantity) for line in nov_invoice.lines] == [
        ("fee", 1),
        ("included", 4),
    ]
    assert [(line.kind, line.quantity) for line in dec_invoice.lines] == [
        ("fee", 1),
        ("included", 3),
    ]
    usage = {row["month"]: row["platform_emails"] for row in services.reports().usage("edge")}
    assert usage == {"2026-11": 4, "2026-12": 3, "2027-01": 0}  # January opened at the close

    env = ledger_env(services.settings)
    for email, number in ((november[0], "2026-000001"), (december[0], "2027-000001")):
        result = ledger_command("trace", "edge", message_id(email), "--json", env=env)
        assert result.returncode == 0, result.stderr
        [traced] = json.loads(result.stdout)
        assert traced["document_number"] == number
