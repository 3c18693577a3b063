"""SIGKILL the consumer process while it ingests; nothing is lost or billed twice.

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

from ledger.settings import Settings
from tests.conftest import MakeServices
from tests.support import Upstreams, catch_up, ledger_env, positions_at_end, utc, wait_for

ACCOUNTS = 15
PER_ACCOUNT = 2000


def _env(settings: Settings) -> dict[str, str]:
    env = ledger_env(settings)
    env["LEDGER_BATCH_MAX_RECORDS"] = "1000"  # many small batches: many places to die
    return env


def _applied(settings: Settings) -> int:
    with psycopg.connect(str(settings.database_url)) as conn:
        row = conn.execute(
            f'SELECT count(*) FROM "{settings.database_schema}".ledger_dedupe'
        ).fetchone()
        return int(row[0]) if row else 0


def _start(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    ledger = Path(sys.executable).with_name("ledger")
    return subprocess.Popen(
        [str(ledger), "serve", "--role", "consumer"],
        env=_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )


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
    log = tmp_path / "consumer.log"

    for kill_after in (4_000, 13_000, 22_000):
        process = _start(settings, log)
        try:
            wait_for(
                lambda n=kill_after: _applied(settings) >= n,
                timeout=120,
                what=f"{kill_after} applied",
            )
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        assert process.returncode == -signal.SIGKILL

    process = _start(settings, log)
    try:
        wait_for(
            lambda: _applied(settings) >= ACCOUNTS * PER_ACCOUNT, timeout=120, what="all applied"
        )
        topics = [settings.topic_accounts, settings.topic_email_sent]
        wait_for(
            lambda: positions_at_end(services, topics), timeout=60, what="positions at the end"
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()[-2000:]
    finally:
        if process.poll() is None:
            process.kill()

    # Every applied message leaves exactly one dedupe key: 15 openings + 30,000 emails;
    # the 300 re-publications left none.
    assert _applied(settings) == ACCOUNTS + ACCOUNTS * PER_ACCOUNT
    up.close()
    catch_up(services)
    reports = services.reports()
    for account in accounts:
        usage = reports.usage(account, "2026-11")[0]
        assert (usage["platform_emails"], usage["included_emails"], usage["charged_emails"]) == (
            2000,
            1000,
            1000,
        )
        assert usage["usage_amount"] == "1.00"
        assert reports.balance(account)["balance"] == "-11.00"
