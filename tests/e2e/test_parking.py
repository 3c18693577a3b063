"""Facts that arrive before their account, and dead letters replayed once their
cause is fixed: through the real broker, the real database and the ``ledger``
command as a user runs it.

Plans (plans/*.toml): email-starter: fee 10.00, 1,000 included, then 0.0010
each (to 10,000). contacts-basic: up to 500 contacts 19.00 a month. The test's
own plan email-growth (added later): fee 20.00, 100 included, then 0.0020.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from commands.store import LedgerRecorder
from consumers.upstream_publisher import raw
from ledger.contacts.account import ContactsAccount
from ledger.entrypoints.bootstrap import Services
from ledger.entrypoints.settings import PROJECT_ROOT
from tests.conftest import MakeServices
from tests.support import (
    Upstreams,
    assert_each_billed,
    catch_up,
    ledger_command,
    ledger_env,
    poll_until,
    positions_at_end,
    utc,
    wait_for,
)


def _recorder(services: Services) -> LedgerRecorder:
    recorder = services.ledger.process_recorder
    assert isinstance(recorder, LedgerRecorder)
    return recorder


def _rows(services: Services, table: str) -> int:
    name = sql.Identifier(services.settings.database_schema, table)
    with psycopg.connect(str(services.settings.database_url)) as conn:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(name)).fetchone()
    return int(row[0]) if row else 0


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _serve(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("ledger")), "serve", "--role", "consumer"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )


def test_facts_published_before_their_account_are_parked_then_billed_exactly_once(
    make_services: MakeServices, tmp_path: Path
) -> None:
    services = make_services()
    settings = services.settings
    env = ledger_env(settings)
    # The consumer runs on the wall clock; these facts are dated November 2026. The
    # bound is not what this test is about (tests/integration/test_parking.py is).
    env["LEDGER_PARK_MAX_AGE"] = "P36500D"
    log = tmp_path / "consumer.log"
    consumer = _serve(env, log)
    up = Upstreams(services)
    recorder = _recorder(services)
    try:
        # Usage, a top-up and contact changes, each on its own topic, before the openings.
        up.publish(
            [
                *up.emails("early", 1500, utc(2026, 11, 2, 9)),
                up.credit("early", "20.00", utc(2026, 11, 1, 8)),
                up.contact("shop", "ann", 1, utc(2026, 11, 1, 7), email="ann@x"),
                up.contact("shop", "bob", 1, utc(2026, 11, 1, 7), chat_replied=True),
                up.contact("shop", "cid", 1, utc(2026, 11, 1, 7)),  # nothing billable
            ]
        )
        wait_for(lambda: recorder.parked_count() == 1504, timeout=90, what="1,504 facts parked")
        assert recorder.dead_letter_count() == 0
        listed = _json(ledger_command("parked", "--json", env=env))
        assert listed["total"] == 1504
        assert sorted(
            (a["account_id"], a["facts"], a["oldest_event_time"]) for a in listed["accounts"]
        ) == [
            ("early", 1501, "2026-11-01T08:00:00+00:00"),
            ("shop", 3, "2026-11-01T07:00:00+00:00"),
        ]

        # Seconds later, the openings: every parked fact is applied, once.
        up.publish(
            [
                up.opened("early", utc(2026, 11, 1), payment_mode="prepaid"),
                up.opened("shop", utc(2026, 11, 1, 9), plan="contacts-basic"),
            ]
        )
        wait_for(lambda: recorder.parked_count() == 0, timeout=90, what="parked facts applied")
        wait_for(
            lambda: positions_at_end(
                services, [settings.topic_accounts, settings.topic_email_sent]
            ),
            timeout=60,
            what="positions at the end",
        )
        consumer.send_signal(signal.SIGTERM)
        assert consumer.wait(timeout=30) == 0, log.read_text()[-2000:]
    finally:
        if consumer.poll() is None:
            consumer.kill()
        up.close()

    # Dedupe keys: 1,500 emails + the credit + 2 openings, each once; contact changes
    # are kept by their version instead (3 rows). Nothing was dead-lettered.
    assert _rows(services, "ledger_dedupe") == 1503
    assert _rows(services, "ledger_contact_versions") == 3
    assert recorder.dead_letter_count() == 0
    assert _json(ledger_command("parked", "--json", env=env)) == {"total": 0, "accounts": []}
    # early, prepaid: 1,500 emails, 1,000 included, 500 at 0.0010 = 0.50;
    # balance 20.00 credit - 10.00 fee - 0.50 = 9.50.
    assert_each_billed(
        services,
        ["early"],
        "2026-11",
        emails=1500,
        included=1000,
        charged=500,
        amount="0.50",
        balance="9.50",
    )
    # shop: ann (email) and bob (chat replied) are billable from 07:00, before the opening.
    shop = services.ledger.get_account("shop")
    assert isinstance(shop, ContactsAccount)
    assert recorder.billable_contacts("shop", utc(2026, 11, 1, 9)) == {
        "ann": ["email"],
        "bob": ["chat_replied"],
    }
    services.settings.close_grace = timedelta(hours=1)
    documents = services.close_periods(utc(2026, 11, 1, 10))
    # The first period, priced at the opening: 2 contacts, tier up to 500: 19.00.
    assert [(d.number, d.kind, str(d.total.amount)) for d in documents] == [
        ("PF-shop-0001", "proforma", "19.00")
    ]
    catch_up(services)


KILLED_ACCOUNTS, KILLED_EMAILS = 20, 400


def test_sigkill_while_parked_facts_are_re_driven_loses_none_and_bills_none_twice(
    make_services: MakeServices, tmp_path: Path
) -> None:
    """8,000 emails parked for 20 accounts, then their openings; the consumer process is
    SIGKILLed while the re-drive (pages of 200 rows, one transaction each) is under way,
    and restarted. Expected per account, by hand: 400 emails, all included (1,000 free),
    usage 0.00; postpaid balance -10.00 (the fee)."""
    services = make_services()
    settings = services.settings
    env = ledger_env(settings)
    env["LEDGER_PARK_MAX_AGE"] = "P36500D"  # the wall clock, November 2026 facts
    env["LEDGER_BATCH_MAX_RECORDS"] = "200"  # many re-drive transactions: a place to die
    log = tmp_path / "consumer.log"
    accounts = [f"acct-{n:02d}" for n in range(KILLED_ACCOUNTS)]
    total = KILLED_ACCOUNTS * KILLED_EMAILS
    up = Upstreams(services)
    recorder = _recorder(services)
    process = _serve(env, log)
    try:
        up.publish(
            [
                up.email(a, utc(2026, 11, 2 + n % 20, 9))
                for n in range(KILLED_EMAILS)
                for a in accounts
            ]
        )
        wait_for(lambda: recorder.parked_count() == total, timeout=120, what="all parked")
        up.publish([up.opened(a, utc(2026, 11, 1)) for a in accounts])
        wait_for(
            lambda: _rows(services, "ledger_dedupe") >= KILLED_ACCOUNTS + 2000,
            timeout=120,
            what="the re-drive under way",
        )
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL
    assert recorder.parked_count() > 0, "killed after the re-drive had finished"

    process = _serve(env, log)
    try:
        wait_for(lambda: recorder.parked_count() == 0, timeout=120, what="the re-drive done")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
        up.close()
    assert _rows(services, "ledger_dedupe") == KILLED_ACCOUNTS + total
    assert recorder.dead_letter_count() == 0
    assert_each_billed(
        services,
        accounts,
        "2026-11",
        emails=KILLED_EMAILS,
        included=KILLED_EMAILS,
        charged=0,
        amount="0.00",
        balance="-10.00",
    )


def _growth_plan(folder: Path) -> None:
    (folder / "growth.toml").write_text(
        "[plans.email-growth]\n"
        'name = "Email Growth"\n'
        'currency = "EUR"\n'
        'monthly_fee = "20.00"\n'
        "included_emails = 100\n"
        'tier_mode = "graduated"\n'
        'tiers = [{ unit_price = "0.0020" }]\n'
    )


def test_a_letter_refused_for_an_unknown_plan_is_billed_once_after_the_plan_is_added_and_replayed(
    make_services: MakeServices, tmp_path: Path
) -> None:
    plans = tmp_path / "plans"
    shutil.copytree(PROJECT_ROOT / "plans", plans)
    services = make_services(plans_dir=plans)
    services.clock = lambda: utc(2026, 11, 3)
    env = ledger_env(services.settings)
    up = Upstreams(services)
    up.publish([up.opened("newco", utc(2026, 11, 1), plan="email-growth")])
    up.publish(up.emails("newco", 1200, utc(2026, 11, 2, 9)))
    recorder = _recorder(services)
    consumer = services.consumer()
    try:
        poll_until(
            consumer,
            lambda: recorder.dead_letter_count() == 1 and recorder.parked_count() == 1200,
            "the opening dead-lettered, the emails parked",
        )
    finally:
        consumer.close()
    [letter] = recorder.dead_letters()
    assert (letter["reason"], letter["replayed_at"]) == ("unknown plan 'email-growth'", None)

    # The cause is fixed: the plan is added, and the service restarted (plans are read at start).
    _growth_plan(plans)
    restarted = make_services(plans_dir=plans)
    restarted.clock = services.clock
    replayed = ledger_command("dead-letters", "replay", "--reason", "UNKNOWN PLAN", env=env)
    assert replayed.returncode == 0, replayed.stderr
    assert " ".join(replayed.stdout.split()) == (  # rich wraps at the terminal's width
        "queued 1 dead letter(s) for replay (ids 1); the consumer (ledger serve) re-drives them"
    )
    again = ledger_command("dead-letters", "replay", "--all", env=env)
    assert (
        again.stdout.strip()
        == "nothing to replay: the 1 matching dead letter(s) were replayed already"
    )
    by_id = ledger_command("dead-letters", "replay", "--id", str(letter["id"]), env=env)
    assert by_id.returncode == 0 and by_id.stdout.startswith(
        f"nothing to replay: dead letter {letter['id']} was replayed at"
    )
    missing = ledger_command("dead-letters", "replay", "--id", "999", env=env)
    assert (missing.returncode, missing.stderr.strip()) == (1, "error: no dead letter 999")
    assert recorder.parked_count() == 1201  # the replayed opening waits for the consumer

    consumer = restarted.consumer()
    try:
        poll_until(consumer, lambda: recorder.parked_count() == 0, "the replay re-driven")
    finally:
        consumer.close()
    up.close()

    # Opened once (on the new plan), each email billed once: 1,200 emails, 100 included,
    # 1,100 at 0.0020 = 2.20; postpaid balance -(20.00 fee + 2.20) = -22.20.
    assert_each_billed(
        restarted,
        ["newco"],
        "2026-11",
        emails=1200,
        included=100,
        charged=1100,
        amount="2.20",
        balance="-22.20",
    )
    assert _rows(services, "ledger_dedupe") == 1 + 1200
    history = [type(e).__name__ for e in restarted.ledger.history("newco")]
    assert history.count("Opened") == 1
    listed = _json(ledger_command("dead-letters", "--json", env=env))
    assert (listed["total"], len(listed["dead_letters"])) == (1, 1)
    assert listed["dead_letters"][0]["replayed_at"] is not None
    assert listed["dead_letters"][0]["parked_id"] is not None


def test_the_dead_letter_listing_is_newest_first_with_totals_filters_key_and_payload(
    make_services: MakeServices,
) -> None:
    services = make_services(topic_partitions=1)
    settings = services.settings
    up = Upstreams(services)
    up.publish([up.opened("acme", utc(2026, 11, 1))])
    up.publish(
        [
            raw(settings.topic_email_sent, "acme", b"[bold]not json[/bold]"),
            up.mta.event(
                settings.topic_email_sent,
                "email.sent",
                utc(2026, 11, 2),
                {"account_id": "acme", "route": "platform"},
            ),
        ]
    )
    consumer = services.consumer()
    try:
        poll_until(
            consumer, lambda: _recorder(services).dead_letter_count() == 2, "two dead letters"
        )
        up.publish([up.opened("other", utc(2026, 11, 1), plan="email-nope")])
        poll_until(
            consumer, lambda: _recorder(services).dead_letter_count() == 3, "three dead letters"
        )
    finally:
        consumer.close()
        up.close()
    env = ledger_env(settings)

    listed = _json(ledger_command("dead-letters", "--json", env=env))
    assert (listed["total"], listed["matching"]) == (3, 3)
    letters = listed["dead_letters"]
    assert [d["id"] for d in letters] == [3, 2, 1]  # newest first
    assert [(d["topic"], d["offset"], d["key"]) for d in letters] == [
        (settings.topic_accounts, 1, "other"),
        (settings.topic_email_sent, 1, "acme"),
        (settings.topic_email_sent, 0, "acme"),
    ]
    assert letters[0]["reason"] == "unknown plan 'email-nope'"
    assert json.loads(letters[0]["payload"])["data"]["plan"] == "email-nope"
    assert (letters[2]["payload"], letters[2]["payload_encoding"]) == (
        "[bold]not json[/bold]",
        "utf-8",
    )

    by_topic = _json(
        ledger_command("dead-letters", "--topic", settings.topic_email_sent, "--json", env=env)
    )
    assert (by_topic["total"], by_topic["matching"]) == (3, 2)
    assert [d["id"] for d in by_topic["dead_letters"]] == [2, 1]
    by_reason = _json(ledger_command("dead-letters", "--reason", "NOT JSON", "--json", env=env))
    assert (by_reason["matching"], [d["id"] for d in by_reason["dead_letters"]]) == (1, [1])
    newest = _json(ledger_command("dead-letters", "--limit", "1", "--json", env=env))
    assert (newest["total"], [d["id"] for d in newest["dead_letters"]]) == (3, [3])

    table = ledger_command("dead-letters", env={**env, "COLUMNS": "250"})
    assert table.returncode == 0, table.stderr
    assert "[bold]not json[/bold]" in table.stdout  # upstream text is shown, never styled
    assert "3 shown of 3 dead letter(s)" in table.stdout
    filtered = ledger_command("dead-letters", "--reason", "plan", env={**env, "COLUMNS": "250"})
    assert "1 shown of 3 dead letter(s), 1 matching" in filtered.stdout
