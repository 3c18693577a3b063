"""Close benchmark: the month close over many accounts of both models, then the same
close again with nothing due, and the collection and dunning scan.

    python bench/close.py [--accounts 10000]

The history is written through the command handlers (no broker): half the
accounts email accounts (prepaid graduated and postpaid volume, as in
bench/rebuild.py) with a month of emails, half contacts accounts (contacts-basic,
paid per proforma) with a few contacts each. The close as of 2 November 07:00
documents October (email accounts) and prices the contacts accounts' next
period; its documents/s is the figure (target: >= 1,000). Then the close is
run again as of the same time: nothing is due, and it must not cost a full
close. Then the scan (``ledger collect``) at the close's time requests each
new proforma's first attempt, and the same scan again finds nothing due
(target: under 1 s for 10,000 accounts). Last line:
``close_documents_per_s=<n> idle_close_s=<s> scan_s=<s> idle_scan_s=<s>``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import host_speed
from rebuild import OCTOBER, History, _account, _opening

from commands.models import (
    AccountCommand,
    ContactChangeItem,
    OpenAccount,
    Origin,
    RecordContactChanges,
)
from ledger.contacts.billable import ContactState
from ledger.entrypoints.bootstrap import bootstrap
from ledger.entrypoints.embedded import start_postgres
from ledger.entrypoints.settings import Settings

CLOSE_AT = datetime(2026, 11, 2, 7, tzinfo=UTC)


def _contacts_opening(i: int) -> OpenAccount:
    return OpenAccount(
        account_id=_account(i),
        plan="contacts-basic",
        payment_mode="postpaid",
        currency="EUR",
        at=OCTOBER,
    )


def _contacts(i: int, count: int) -> RecordContactChanges:
    changes = tuple(
        ContactChangeItem(
            ContactState(f"c{n}", 1, email=f"c{n}@{i}.example"),
            OCTOBER + timedelta(days=1, minutes=n),
            Origin("urn:bench:contacts", f"{i}-{n}", message_id=f"c{n}"),
        )
        for n in range(count)
    )
    return RecordContactChanges(account_id=_account(i), changes=changes)


def build(history: History, accounts: int, emails: int, contacts: int) -> None:
    email_accounts = accounts // 2  # accounts 0 .. n/2 - 1 bill emails, the rest contacts
    history.accounts = email_accounts
    commands: list[AccountCommand] = [_opening(i) for i in range(email_accounts)]
    commands += [_contacts_opening(i) for i in range(email_accounts, accounts)]
    history.save(commands)
    history.save([_contacts(i, contacts) for i in range(email_accounts, accounts)])
    history.emails_batch(emails, OCTOBER + timedelta(days=2), timedelta(days=25))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--emails", type=int, default=20, help="per email account")
    parser.add_argument("--contacts", type=int, default=5, help="per contacts account")
    args = parser.parse_args()
    datadir = Path(tempfile.mkdtemp(prefix="ledger-close-"))
    postgres = start_postgres(datadir / "pg", persistent=False)
    try:
        svc = bootstrap(Settings(database_url=postgres.url, home=datadir), need_kafka=False)
        started = time.perf_counter()
        build(History(svc, args.accounts), args.accounts, args.emails, args.contacts)
        print(f"history: {args.accounts:,} accounts in {time.perf_counter() - started:.1f}s")
        print(f"host speed: {host_speed():.2f}s for 10M empty Python loop iterations")
        started = time.perf_counter()
        documents = svc.close_periods(CLOSE_AT)
        seconds = time.perf_counter() - started
        rate = len(documents) / seconds
        print(f"close: {len(documents):,} documents in {seconds:.1f}s ({rate:,.0f} documents/s)")
        started = time.perf_counter()
        again = svc.close_periods(CLOSE_AT)
        idle = time.perf_counter() - started
        print(f"idle close (nothing due): {len(again)} documents in {idle:.2f}s")
        started = time.perf_counter()
        scan = svc.collect(CLOSE_AT)
        scan_s = time.perf_counter() - started
        print(
            f"scan: {scan.visited:,} accounts visited, {len(scan.requests):,} collections"
            f" requested in {scan_s:.2f}s"
        )
        started = time.perf_counter()
        idle_scan = svc.collect(CLOSE_AT)
        idle_scan_s = time.perf_counter() - started
        print(f"idle scan (nothing due): {idle_scan.visited} accounts in {idle_scan_s:.3f}s")
        svc.close()
        print(
            f"close_documents_per_s={rate:.0f} idle_close_s={idle:.2f}"
            f" scan_s={scan_s:.2f} idle_scan_s={idle_scan_s:.3f}"
        )
    finally:
        postgres.stop()
        shutil.rmtree(datadir, ignore_errors=True)


if __name__ == "__main__":
    main()
