"""SIGKILL the consumer while it ingests emails, contact changes and payment answers;
the collection requests and notices published afterwards are exactly the expected
ones: none lost, none twice.

By hand. 10 contacts-basic accounts ``card-0`` .. ``card-9`` opened 2026-11-01
00:00Z: their first proforma (no billable contact then) is 19.00 EUR, issued at
the close of 06:00Z, attempt 1 requested then. The bridge answers: attempts of
``card-0`` .. ``card-5`` failed at 12:00Z (each answer published twice, the same
CloudEvent), those of ``card-6`` .. ``card-9`` paid. Meanwhile 200 contact
changes per contacts account and 1,000 emails for each of 5 email accounts. The
retries are due a day after the failures, 2026-11-02 12:00Z: 6 more requests.
Published: 10 + 6 = 16 ``collection.requested``; 6 ``notice.opened``, 4 payments
settled with no notice (never failed).
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import MakeServices
from tests.e2e.test_crash_safety import _applied, kill_and_finish
from tests.support import Upstreams, drain, read_topic, utc

CARDS = [f"card-{i}" for i in range(10)]
MAILS = [f"mail-{i}" for i in range(5)]
FAILED, PAID = CARDS[:6], CARDS[6:]
CONTACTS, EMAILS = 200, 1000


def test_sigkill_amid_payments_publishes_each_collection_request_once(
    make_services: MakeServices, tmp_path: Path
) -> None:
    services = make_services()
    settings = services.settings
    up = Upstreams(services)
    up.publish(
        [
            *(up.opened(a, utc(2026, 11, 1), plan="contacts-basic") for a in CARDS),
            *(up.opened(a, utc(2026, 11, 1)) for a in MAILS),
        ]
    )
    drain(services)
    assert len(services.close_periods(utc(2026, 11, 1, 6))) == len(CARDS)
    first = services.collect(utc(2026, 11, 1, 6))
    assert sorted(r.request_id for _, r in first.requests) == [
        f"PF-{a}-0001/attempt-1" for a in CARDS
    ]

    answers = []
    for a in FAILED:
        failure = up.payment_failed(
            a,
            "19.00",
            utc(2026, 11, 1, 12),
            f"PF-{a}-0001",
            "insufficient funds",
            request_id=f"PF-{a}-0001/attempt-1",
        )
        answers += [failure, failure]  # re-published: applied once
    for a in PAID:
        answers.append(
            up.payment(
                a,
                "19.00",
                utc(2026, 11, 1, 12),
                f"PF-{a}-0001",
                request_id=f"PF-{a}-0001/attempt-1",
            )
        )
    contacts = [
        up.contact(a, f"k{n}", 1, utc(2026, 11, 1, 13), email=f"k{n}@x")
        for n in range(CONTACTS)
        for a in CARDS
    ]
    emails = [up.email(a, utc(2026, 11, 1, 14)) for _ in range(EMAILS) for a in MAILS]
    up.publish(emails[:2500] + answers[:8] + contacts[:1000])
    up.publish(contacts[1000:] + answers[8:] + emails[2500:])
    openings = len(CARDS) + len(MAILS)
    kill_and_finish(
        services,
        tmp_path / "consumer.log",
        kill_after=(openings + 1_000, openings + 3_500),
        total=openings + len(MAILS) * EMAILS + len(FAILED) + len(PAID),
        topics=[
            settings.topic_accounts,
            settings.topic_email_sent,
            settings.topic_contact_changed,
            settings.topic_payments,
        ],
        also={"ledger_contact_versions": len(CARDS) * CONTACTS},
    )
    # every message applied once: the openings, the emails, one of each twice-sent answer
    assert _applied(settings) == openings + len(MAILS) * EMAILS + len(CARDS)
    assert _applied(settings, "ledger_contact_versions") == len(CARDS) * CONTACTS
    up.close()

    retries = services.collect(utc(2026, 11, 2, 12))
    assert sorted(r.request_id for _, r in retries.requests) == [
        f"PF-{a}-0001/attempt-2" for a in FAILED
    ]
    assert services.collect(utc(2026, 11, 2, 12)).requests == []
    services.payments_outbox().catch_up()
    published = read_topic(services, settings.topic_collections, expected=16)
    assert sorted((m["data"]["request_id"], m["data"]["amount"]) for m in published) == sorted(
        [(f"PF-{a}-0001/attempt-1", "19.00") for a in CARDS]
        + [(f"PF-{a}-0001/attempt-2", "19.00") for a in FAILED]
    )
    assert len({m["id"] for m in published}) == 16
    notices = read_topic(services, settings.topic_notices, expected=6)
    assert sorted((m["type"], m["data"]["notice_id"]) for m in notices) == [
        ("notice.opened", f"PF-{a}-0001/payment_failed") for a in FAILED
    ]
