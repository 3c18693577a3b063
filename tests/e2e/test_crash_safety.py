"""SIGKILL the consumer process while it ingests; nothing is lost or billed twice.

Two runs: emails on email plans, and contact changes on contacts plans.

15 postpaid accounts on email-starter, 2,000 emails each (30,000), plus 300
upstream re-publications of emails already sent. The consumer (``ledger serve
--role consumer``, a real process) is killed with SIGKILL three times at
different points of the ingestion and restarted; finally it is stopped with
SIGTERM, which must finish the batch in flight and exit 0.

Expected per account, by hand: 2,000 platform emails, 1,000 included, 1,000
charged at 0.0010 = 1.00; balance = -(fee 10.00 + 1.00) = -11.00.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import psycopg

from ledger.entrypoints.bootstrap import Services
from ledger.entrypoints.settings import Settings
from tests.conftest import MakeServices
from tests.support import (
    Upstreams,
    assert_each_billed,
    catch_up,
    ledger_env,
    positions_at_end,
    utc,
    wait_for,
)

ACCOUNTS = 15
PER_ACCOUNT = 2000


def _env(settings: Settings) -> dict[str, str]:
    env = ledger_env(settings)
    env["LEDGER_BATCH_MAX_RECORDS"] = "1000"  # many small batches: many places to die
    return env


def _applied(settings: Settings, table: str = "ledger_dedupe") -> int:
    """Rows in a table written with the events: dedupe keys, or contact versions."""
    with psycopg.connect(str(settings.database_url)) as conn:
        row = conn.execute(f'SELECT count(*) FROM "{settings.database_schema}".{table}').fetchone()
        return int(row[0]) if row else 0


def _start(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    ledger = Path(sys.executable).with_name("ledger")
    return subprocess.Popen(
        [str(ledger), "serve", "--role", "consumer"],
        env=_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )


def kill_and_finish(
    services: Services,
    log: Path,
    kill_after: tuple[int, ...],
    total: int,
    topics: list[str],
    table: str = "ledger_dedupe",
    also: dict[str, int] | None = None,
) -> None:
    """SIGKILL a consumer process once each threshold of rows in ``table`` is passed,
    then let a last one finish and stop it with SIGTERM (which must exit 0).

    The last one is stopped once ``table`` holds ``total`` rows, each table of
    ``also`` its count, and the stored positions are at the topics' ends (seen
    once to hold a moment before a partition's last batch was committed: the
    counts are what the test asserts, so they are waited for too)."""
    settings = services.settings
    for threshold in kill_after:
        process = _start(settings, log)
        try:
            wait_for(
                lambda n=threshold: _applied(settings, table) >= n,
                timeout=120,
                what=f"{threshold} applied",
            )
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        assert process.returncode == -signal.SIGKILL

    process = _start(settings, log)
    try:
        wait_for(lambda: _applied(settings, table) >= total, timeout=120, what="all applied")
        for other, count in (also or {}).items():
            wait_for(
                lambda t=other, n=count: _applied(settings, t) >= n,
                timeout=120,
                what=f"{count} rows in {other}",
            )
        wait_for(
            lambda: positions_at_end(services, topics),
            timeout=60,
            what="positions at the end",
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()[-2000:]
    finally:
        if process.poll() is None:
            process.kill()


def test_sigkill_at_any_point_loses_nothing_and_bills_nothing_twice(
    make_services: MakeServices, tmp_path: Path
) -> None:
    services = make_services()
    settings = services.settings
    up = Upstreams(services)
    accounts = [f"acct-{i:02d}" for i in range(ACCOUNTS)]
    up.publish([up.opened(a, utc(2026, 11, 1)) for a in accounts])
    emails = [
        up.email(a, utc(2026, 11, 2 + n % 20, 8)) for n in range(PER_ACCOUNT) for a in accounts
    ]
    up.publish(emails[:20_000])
    up.publish(emails[20_000:] + emails[5_000:5_300])  # the tail, then 300 re-publications
    kill_and_finish(
        services,
        tmp_path / "consumer.log",
        kill_after=(4_000, 13_000, 22_000),
        total=ACCOUNTS * PER_ACCOUNT,
        topics=[settings.topic_accounts, settings.topic_email_sent],
    )

    # Every applied message leaves exactly one dedupe key: 15 openings + 30,000 emails;
    # the 300 re-publications left none.
    assert _applied(settings) == ACCOUNTS + ACCOUNTS * PER_ACCOUNT
    up.close()
    assert_each_billed(
        services,
        accounts,
        "2026-11",
        emails=2000,
        included=1000,
        charged=1000,
        amount="1.00",
        balance="-11.00",
    )


CONTACT_ACCOUNTS = 10
CONTACTS = 1000


def test_sigkill_while_counting_contacts_loses_no_change_and_doubles_none(
    make_services: MakeServices, tmp_path: Path
) -> None:
    """10 contacts accounts; per account 1,000 contacts created (v1, email), 300 of them
    deleted (v2), 100 of those re-created (v3, phone), 50 stale v1 re-sends with new ids
    (ignored: v2 is newer) and 30 re-publications of the same CloudEvents.

    By hand, per account: billable 1,000 - 300 + 100 = 800; changes applied (contact
    versions stored) 1,400; the 50 stale and 30 re-published ones change nothing.
    Contact changes leave no dedupe keys (they dedupe by version): only the openings do.
    """
    services = make_services()
    settings = services.settings
    up = Upstreams(services)
    accounts = [f"crm-{i:02d}" for i in range(CONTACT_ACCOUNTS)]
    up.publish([up.opened(a, utc(2026, 11, 1), plan="contacts-basic") for a in accounts])
    created = [
        up.contact(a, f"k{n}", 1, utc(2026, 11, 2), email=f"k{n}@x")
        for n in range(CONTACTS)
        for a in accounts
    ]
    deleted = [
        up.contact_deleted(a, f"k{n}", 2, utc(2026, 11, 3)) for n in range(300) for a in accounts
    ]
    recreated = [
        up.contact(a, f"k{n}", 3, utc(2026, 11, 4), phone="+1")
        for n in range(100)
        for a in accounts
    ]
    stale = [
        up.contact(a, f"k{n}", 1, utc(2026, 11, 5), email="old@x")
        for n in range(200, 250)
        for a in accounts
    ]
    up.publish(created + deleted)
    up.publish(recreated + stale + created[:300])
    kill_and_finish(
        services,
        tmp_path / "consumer.log",
        kill_after=(3_000, 7_000, 11_000),
        total=CONTACT_ACCOUNTS * 1400,
        topics=[settings.topic_accounts, settings.topic_contact_changed],
        table="ledger_contact_versions",
    )

    assert _applied(settings, "ledger_contact_versions") == CONTACT_ACCOUNTS * 1400
    assert _applied(settings) == CONTACT_ACCOUNTS  # the openings
    up.close()
    catch_up(services)
    reports = services.reports()
    recorder = services.ledger.process_recorder
    for account in accounts:
        count = reports.contact_count(account)
        assert (count["billable_contacts"], count["changes_applied"]) == (800, 1400)
        assert len(recorder.billable_contacts(account, utc(2026, 12, 1))) == 800  # type: ignore[attr-defined]
