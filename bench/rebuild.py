"""Rebuild benchmark: replay a month of history into every read model.

    python bench/rebuild.py [--emails 500000] [--accounts 1000] [--runs 3]

The history is written through the command handlers, as the consumer would
batch it (no broker: what is measured is the replay, not the ingest): half the
accounts prepaid on a graduated plan with credit, half postpaid on a volume plan
(Paris time), October's emails in batches of ``--batch`` per account, a plan
change, the month's close, then late October emails and November's first. Then
the rebuild runs ``--runs`` times in this process (``ReadModels.rebuild``, what
``ledger projections rebuild`` calls), and once through the command itself
(process start and imports included). Last line:
``events_per_s=<n> emails_per_s=<n>`` (the best in-process run).
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

from harness import host_speed, time_ledger_command

from commands.handlers import BatchWork, apply_commands, save_batch
from commands.models import (
    AccountCommand,
    ChangePlan,
    OpenAccount,
    Origin,
    PurchaseCredit,
    RecordEmailsSent,
    SentEmailItem,
)
from ledger.entrypoints.bootstrap import Services, bootstrap
from ledger.entrypoints.embedded import start_postgres
from ledger.entrypoints.settings import Settings

OCTOBER = datetime(2026, 10, 1, tzinfo=UTC)


def _account(i: int) -> str:
    return f"acct-{i:04d}"


def _opening(i: int) -> OpenAccount:
    if i % 2 == 0:
        return OpenAccount(
            account_id=_account(i),
            plan="email-starter",
            payment_mode="prepaid",
            currency="EUR",
            at=OCTOBER,
        )
    return OpenAccount(
        account_id=_account(i),
        plan="email-volume",
        payment_mode="postpaid",
        currency="EUR",
        timezone="Europe/Paris",
        at=OCTOBER,
    )


class History:
    """Writes batches as the consumer would: every account's emails in one save."""

    def __init__(self, svc: Services, accounts: int) -> None:
        self.svc = svc
        self.accounts = accounts
        self.emails = 0
        self.sequence = 0

    def save(self, commands: list[AccountCommand]) -> None:
        work = BatchWork(self.svc.ledger, self.svc.catalogue)
        apply_commands(commands, work)
        if work.rejections or work.parkings:
            raise RuntimeError(f"refused: {(work.rejections + work.parkings)[:3]}")
        save_batch(work, None)

    def emails_batch(self, per_account: int, start: datetime, span: timedelta) -> None:
        commands: list[AccountCommand] = []
        step = span / per_account
        for i in range(self.accounts):
            items = []
            for n in range(per_account):
                self.sequence += 1
                origin = Origin(
                    "urn:bench:mta", str(self.sequence), message_id=f"<{self.sequence}>"
                )
                items.append(SentEmailItem(start + step * n, "platform", origin))
            commands.append(RecordEmailsSent(account_id=_account(i), emails=tuple(items)))
        self.save(commands)
        self.emails += per_account * self.accounts


def build(svc: Services, emails: int, accounts: int, batch: int) -> int:
    """The history; returns the emails it holds."""
    history = History(svc, accounts)
    history.save([_opening(i) for i in range(accounts)])
    history.save(
        [
            PurchaseCredit(account_id=_account(i), amount=5000, reference=f"top-{i}", at=OCTOBER)
            for i in range(0, accounts, 2)
        ]
    )
    rounds = max(1, emails // (batch * accounts))
    day = timedelta(days=28) / rounds
    for r in range(rounds - 1):
        history.emails_batch(batch, OCTOBER + day * r, day)
        if r == rounds // 2:
            history.save(
                [
                    ChangePlan(account_id=_account(i), plan="email-starter", at=OCTOBER + day * r)
                    for i in range(1, accounts, 10)
                ]
            )
    svc.close_periods(datetime(2026, 11, 2, 7, tzinfo=UTC))
    # The last round: half late October emails, half November's first.
    history.emails_batch(batch // 2, datetime(2026, 10, 31, 12, tzinfo=UTC), timedelta(hours=6))
    history.emails_batch(batch - batch // 2, datetime(2026, 11, 3, tzinfo=UTC), timedelta(days=1))
    return history.emails


def rebuild(svc: Services) -> int:
    """What ``ledger projections rebuild`` does, without its progress bar."""
    return svc.read_models(sole_work=True).rebuild()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--emails", type=int, default=500_000)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100, help="emails per account per batch")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    datadir = Path(tempfile.mkdtemp(prefix="ledger-rebuild-"))
    postgres = start_postgres(datadir / "pg", persistent=False)
    try:
        svc = bootstrap(Settings(database_url=postgres.url, home=datadir), need_kafka=False)
        started = time.perf_counter()
        emails = build(svc, args.emails, args.accounts, args.batch)
        stored = svc.ledger.recorder.max_notification_id() or 0
        print(
            f"history: {emails:,} emails over {args.accounts:,} accounts, {stored:,} stored"
            f" events, written in {time.perf_counter() - started:.1f}s"
        )
        print(f"host speed: {host_speed():.2f}s for 10M empty Python loop iterations")
        best = float("inf")
        for run in range(1, args.runs + 1):
            started = time.perf_counter()
            events = rebuild(svc)
            seconds = time.perf_counter() - started
            best = min(best, seconds)
            print(
                f"rebuild {run}: {events:,} events in {seconds:.2f}s:"
                f" {events / seconds:,.0f} events/s, {emails / seconds:,.0f} emails/s"
            )
        svc.close()
        time_ledger_command(postgres.url, datadir, "projections", "rebuild")
        print(f"events_per_s={stored / best:.0f} emails_per_s={emails / best:.0f}")
    finally:
        postgres.stop()
        shutil.rmtree(datadir, ignore_errors=True)


if __name__ == "__main__":
    main()
