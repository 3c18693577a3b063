"""Live benchmark: how fresh are the balances and usage projections under a steady
stream of email.sent, with ``ledger serve`` running as it runs in production?

    python bench/latency.py [--rate 2000 10000] [--seconds 60] [--consumers 1] [--split-roles]

For each rate, on a fresh embedded PostgreSQL and Tansu: ``ledger serve`` starts
(all roles; or ``--split-roles``: one serve with ``--role consumer`` and one with
the projections, publisher and scheduler roles), 1,000 email accounts open
(postpaid, every fifth prepaid with credit) and are waited for in the balances
projection, then a publisher process sends ``--rate`` email.sent per second for
``--seconds``, event time = now, round robin over the accounts, while a poller
process reads both projections every 50 ms.

The latency of a stored ``EmailsRecorded`` event runs from the ledger's recording of
it (the event's timestamp, taken when the consumer applies the batch, before its
transaction; also the balances row's ``updated_at``, checked below) until the
poller has seen both its balances row at its version and its usage row at the
account's running email count. The poller sees a row when its query returns, so
the figure upper-bounds the commit by one poll interval (and a query). The slope
is the least-squares fit of that latency against the event's time in the run:
~0 when the read side keeps up, positive when it falls behind.

At the end serve gets SIGTERM and must exit 0, and every published email must be
billed (the usage projection's count equals the emails published): a benchmark
that loses emails measures nothing. Each rate's last line:
``rate=<emails/s> p50=<s> p99=<s> slope=<s per s>``.
"""

from __future__ import annotations

import argparse
import multiprocessing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from eventsourcing.utils import get_topic
from harness import Services, host_speed, publish_all, start
from lag import StoredBatch, by_window, emails_so_far, percentile, seen, slope
from live_load import EMAIL_SOURCE, Polled, Published, poll_projections, publish_steadily
from processes import Child, Serve, wait_until

from consumers.upstream_publisher import Outgoing, Upstream
from ledger.emails.account import Account
from ledger.entrypoints.bootstrap import bootstrap
from ledger.entrypoints.settings import Settings

POLL_INTERVAL = 0.05
#: A publisher this far behind its clock did not send at the stated rate.
BEHIND_WARNING = 1.0
EMAILS_RECORDED = get_topic(Account.EmailsRecorded)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rate", type=int, nargs="+", default=[2000, 10000], help="emails/s")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--consumers", type=int, default=1, help="serve --consumers N")
    parser.add_argument(
        "--split-roles", action="store_true", help="the projections in a serve of their own"
    )
    args = parser.parse_args()
    for rate in args.rate:
        run(rate, args)


# ---------------------------------------------------------------- one rate


def run(rate: int, args: argparse.Namespace) -> None:
    roles = "consumer | projections, publisher, scheduler" if args.split_roles else "all roles"
    print(
        f"live: {rate:,} emails/s for {args.seconds:g} s over {args.accounts:,} accounts;"
        f" serve: {roles}, --consumers {args.consumers}"
    )
    print(f"host speed: {host_speed():.2f}s for 10M empty Python loop iterations")
    services = start()
    try:
        url = services.postgres.url
        _create_tables(url)
        with psycopg.connect(url, autocommit=True) as db:
            serve = Serve(services, args.consumers, args.split_roles)
            try:
                first_id = _open_accounts(services, db, args.accounts, serve)
                published, polled = _stream(services, db, rate, args, serve)
                serve_cpu = serve.stop()
            finally:
                serve.kill()
            figures = Figures.read(db, services, first_id, published, polled)
        figures.report(rate, serve_cpu)
    finally:
        services.stop()


def _create_tables(database_url: str) -> None:
    """Before any serve starts: DDL while a sibling writes can deadlock
    (ledger.entrypoints.bootstrap.schema_lock), and the poller needs the tables."""
    svc = bootstrap(Settings(database_url=database_url), need_kafka=False)
    svc.read_models()
    svc.close()


def _open_accounts(
    services: Services, db: psycopg.Connection[Any], count: int, serve: Serve
) -> int:
    """Opens the accounts through serve and waits for them in the balances projection;
    returns the last notification id stored before the stream."""
    publish_all(services, openings(count))
    prepaid = len(range(0, count, 5))
    wait_until(
        lambda: _opened(db) == (count, prepaid), 180, f"{count:,} accounts opened", serve.check
    )
    row = db.execute("SELECT coalesce(max(notification_id), 0) FROM ledger_events").fetchone()
    return int(row[0]) if row else 0


def openings(count: int) -> list[Outgoing]:
    """Email accounts on the graduated starter plan, postpaid; every fifth prepaid
    with enough credit for the run (600 emails each at 10k/s for 60 s: within the
    1,000 included), so none is blocked."""
    panel, now = Upstream("urn:bench:live-panel"), datetime.now(UTC)
    messages = []
    for i in range(count):
        account, prepaid = f"acct-{i:04d}", i % 5 == 0
        data = {
            "account_id": account,
            "plan": "email-starter",
            "payment_mode": "prepaid" if prepaid else "postpaid",
            "currency": "EUR",
        }
        messages.append(panel.event("billing.accounts", "account.opened", now, data))
        if prepaid:
            credit = {"account_id": account, "amount": "100.00"}
            messages.append(
                panel.event("billing.accounts", "account.credit-purchased", now, credit)
            )
    return messages


def _opened(db: psycopg.Connection[Any]) -> tuple[int, int]:
    row = db.execute(
        "SELECT count(*), count(*) FILTER (WHERE payment_mode = 'prepaid' AND credited > 0)"
        " FROM balances"
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _stream(
    services: Services,
    db: psycopg.Connection[Any],
    rate: int,
    args: argparse.Namespace,
    serve: Serve,
) -> tuple[Published, Polled]:
    """The measured part: publisher and poller in their own processes; after the last
    email, until every one is stored and both projections show them."""
    context = multiprocessing.get_context("spawn")
    stop_polling = context.Event()
    poller = Child(poll_projections, services.postgres.url, POLL_INTERVAL, stop_polling)
    accounts = [f"acct-{i:04d}" for i in range(args.accounts)]
    kafka = services.settings.kafka_config(services.broker.bootstrap)
    publisher = Child(publish_steadily, kafka, "billing.email-sent", accounts, rate, args.seconds)
    published: Published = publisher.result(args.seconds + 120)
    catch_up = max(300.0, 5 * args.seconds)
    wait_until(lambda: _billed(db) == published.emails, catch_up, "emails stored", serve.check)
    last_versions = dict(
        db.execute(
            "SELECT originator_id::text, max(originator_version) FROM ledger_dedupe"
            " WHERE source = %s GROUP BY 1",
            (EMAIL_SOURCE,),
        ).fetchall()
    )
    wait_until(
        lambda: _projected(db, published.emails, last_versions),
        catch_up,
        "projections caught up",
        serve.check,
    )
    stop_polling.set()
    polled: Polled = poller.result(60)
    return published, polled


def _billed(db: psycopg.Connection[Any]) -> int:
    row = db.execute(
        "SELECT count(*) FROM ledger_dedupe WHERE source = %s", (EMAIL_SOURCE,)
    ).fetchone()
    return int(row[0]) if row else 0


def _usage_total(db: psycopg.Connection[Any]) -> int:
    row = db.execute("SELECT coalesce(sum(platform_emails), 0) FROM monthly_usage").fetchone()
    return int(row[0]) if row else 0


def _projected(db: psycopg.Connection[Any], emails: int, last_versions: dict[str, int]) -> bool:
    if _usage_total(db) != emails:
        return False
    versions = dict(db.execute("SELECT account_uuid::text, version FROM balances").fetchall())
    return all(versions.get(a, 0) >= v for a, v in last_versions.items())


# ---------------------------------------------------------------- the figures


@dataclass(frozen=True)
class Lag:
    """One stored event's delays: from its newest email's event time to its recording
    (the consumer's), and from its recording until each projection showed it."""

    at: float  # seconds from the first email sent to the event's recording
    consumer: float
    balances: float
    usage: float

    @property
    def both(self) -> float:
        return max(self.balances, self.usage)


@dataclass
class Figures:
    published: Published
    polled: Polled
    stored_events: int
    billed_in_usage: int
    #: The events recorded while emails were being sent, and those after the last one.
    live: list[Lag]
    tail: list[Lag]
    never_seen: int
    updated_at_checked: int

    @classmethod
    def read(
        cls,
        db: psycopg.Connection[Any],
        services: Services,
        first_id: int,
        published: Published,
        polled: Polled,
    ) -> Figures:
        batches = _stored_batches(db, services.postgres.url, first_id)
        live: list[Lag] = []
        tail: list[Lag] = []
        never_seen = 0
        for batch in batches:
            times = seen(batch, polled.balances, polled.usage)
            if times is None:
                never_seen += 1
                continue
            lag = Lag(
                batch.recorded_at - published.started_at,
                batch.recorded_at - batch.newest_email_at,
                times[0] - batch.recorded_at,
                times[1] - batch.recorded_at,
            )
            (live if batch.recorded_at <= published.ended_at else tail).append(lag)
        return cls(
            published=published,
            polled=polled,
            stored_events=len(batches),
            billed_in_usage=_usage_total(db),
            live=live,
            tail=tail,
            never_seen=never_seen,
            updated_at_checked=_check_updated_at(db, batches),
        )

    def report(self, rate: int, serve_cpu: float) -> None:
        published = self.published
        print(
            f"  published {published.emails:,} emails in"
            f" {published.ended_at - published.started_at:.1f} s"
            f" (publisher: {published.cpu_seconds:.1f} s CPU,"
            f" at most {published.most_behind:.3f} s behind its clock)"
        )
        if published.most_behind > BEHIND_WARNING:
            achieved = published.emails / (published.ended_at - published.started_at)
            print(
                f"  WARNING: the publisher fell {published.most_behind:.1f} s behind its clock"
                f" ({achieved:,.0f} emails/s on average): the host could not carry the load,"
                " so these figures are not at the stated rate"
            )
        per_event = published.emails / self.stored_events if self.stored_events else 0.0
        print(
            f"  stored {self.stored_events:,} EmailsRecorded events:"
            f" {per_event:.2f} emails per stored event"
        )
        print(
            f"  poller: {self.polled.polls:,} polls every {POLL_INTERVAL * 1000:.0f} ms,"
            f" {self.polled.cpu_seconds:.1f} s CPU; serve: {serve_cpu:.1f} s CPU from start to exit"
        )
        print(
            "  balances.updated_at = the stored event's timestamp"
            f" on {self.updated_at_checked:,} rows"
        )
        self.check()
        live = self.live
        print(f"  {len(live):,} events recorded while sending; from their recording:")
        for name, values in (
            ("balances", [lag.balances for lag in live]),
            ("usage", [lag.usage for lag in live]),
            ("both", [lag.both for lag in live]),
        ):
            print(f"    to {name:<8}: {_spread(values)}")
        print(f"    consumer (newest email -> recording): {_spread([x.consumer for x in live])}")
        end_to_end = [lag.consumer + lag.both for lag in live]
        print(f"    end to end (newest email -> both): {_spread(end_to_end)}")
        windows = by_window([(lag.at, lag.both) for lag in live], 10)
        p99s = " ".join(f"{percentile(w, 99):.2f}" for w in windows if w)
        print(f"    p99 per 10 s of run: {p99s}")
        if self.tail:
            print(
                f"  {len(self.tail):,} recorded after the last email was sent:"
                f" {_spread([lag.both for lag in self.tail])}"
            )
        print(
            f"  billed: {self.billed_in_usage:,} emails in monthly_usage,"
            f" {published.emails:,} published"
        )
        lags = [lag.both for lag in live]
        print(
            f"rate={rate} p50={percentile(lags, 50):.3f} p99={percentile(lags, 99):.3f}"
            f" slope={slope([(lag.at, lag.both) for lag in live]):.4f}"
        )

    def check(self) -> None:
        if self.billed_in_usage != self.published.emails:
            raise SystemExit(
                f"lost or doubled emails: {self.billed_in_usage:,} billed in monthly_usage,"
                f" {self.published.emails:,} published"
            )
        if self.never_seen:
            raise SystemExit(f"{self.never_seen:,} stored events never seen by the poller")
        if len(self.live) < 2:
            raise SystemExit("fewer than two events recorded while sending: no figures")


def _spread(values: list[float]) -> str:
    return (
        f"p50 {percentile(values, 50):.3f} s, p99 {percentile(values, 99):.3f} s,"
        f" max {max(values):.3f} s"
    )


def _stored_batches(
    db: psycopg.Connection[Any], database_url: str, first_id: int
) -> list[StoredBatch]:
    """The run's ``EmailsRecorded`` events, decoded by the ledger itself for their
    timestamps, with each one's emails counted from the dedupe keys that point at it."""
    counts = {
        (account, int(version)): int(n)
        for account, version, n in db.execute(
            "SELECT originator_id::text, originator_version, count(*) FROM ledger_dedupe"
            " WHERE source = %s GROUP BY 1, 2",
            (EMAIL_SOURCE,),
        ).fetchall()
    }
    running = emails_so_far(counts)
    svc = bootstrap(Settings(database_url=database_url), need_kafka=False, create_tables=False)
    batches = []
    try:
        start_id = first_id + 1
        while True:
            page = svc.ledger.recorder.select_notifications(
                start_id, 1000, topics=[EMAILS_RECORDED]
            )
            for notification in page:
                event: Any = svc.ledger.mapper.to_domain_event(notification)
                key = (str(event.originator_id), event.originator_version)
                if key in running:
                    recorded, newest = event.timestamp, event.effective_at
                    batches.append(
                        StoredBatch(*key, recorded.timestamp(), newest.timestamp(), running[key])
                    )
            if len(page) < 1000:
                break
            start_id = page[-1].id + 1
    finally:
        svc.close()
    return batches


def _check_updated_at(db: psycopg.Connection[Any], batches: list[StoredBatch]) -> int:
    """That the balances row's ``updated_at`` is its event's timestamp, on the rows whose
    last event is one of the run's: the latency's starting point is that column too."""
    recorded = {(b.account, b.version): b.recorded_at for b in batches}
    checked = 0
    for account, version, updated_at in db.execute(
        "SELECT account_uuid::text, version, updated_at FROM balances"
    ).fetchall():
        at = recorded.get((account, version))
        if at is None:
            continue
        if abs(updated_at.timestamp() - at) > 1e-6:
            raise SystemExit(f"balances.updated_at of {account} is not its event's timestamp")
        checked += 1
    return checked


if __name__ == "__main__":
    main()
