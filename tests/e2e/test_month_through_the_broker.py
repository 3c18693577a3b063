"""A month of two accounts through the real broker and database, checked to the cent.

Plans (plans/email.toml):
- email-starter: fee 10.00, 1,000 included, positions 1,001-10,000 at 0.0010,
  10,001-100,000 at 0.0008, beyond at 0.0005, graduated.
- email-volume: fee 25.00, 5,000 included, volume tiers <=20,000 at 0.0009,
  <=200,000 at 0.0006, beyond at 0.00035.

Every expected figure below is worked out by hand in the comments.
"""

from __future__ import annotations

import json
from decimal import Decimal

from consumers.upstream_publisher import raw
from tests.conftest import MakeServices
from tests.support import Upstreams, catch_up, drain, read_topic, utc


def test_a_month_is_billed_exactly_once_with_exact_documents(make_services: MakeServices) -> None:
    services = make_services()
    # The consumer's clock, fixed: after the month's last email (later ones would be
    # refused as future events) and within the parking bound of ghost's email.
    services.clock = lambda: utc(2026, 12, 1, 0, 30)
    up = Upstreams(services)
    settings = services.settings
    pre_emails = up.emails("pre", 3000, utc(2026, 11, 10, 9)) + up.emails(
        "pre", 50, utc(2026, 11, 10, 9), route="custom_smtp"
    )
    credit = up.credit("pre", "15.00", utc(2026, 11, 1, 0, 5))
    up.publish(
        [
            up.opened("pre", utc(2026, 11, 1), payment_mode="prepaid", tax_rate="0.21"),
            credit,
            up.opened(
                "post", utc(2026, 10, 31, 23), plan="email-volume", timezone="Europe/Amsterdam"
            ),
            *pre_emails,
            *up.emails("post", 15_000, utc(2026, 11, 12, 10)),
            # 23:59:59.999 on Nov 30 in Amsterdam (UTC+1) is still November there ...
            *[
                up.email("post", utc(2026, 11, 30, 22, 59, 59).replace(microsecond=999_000))
                for _ in range(10)
            ],
            # ... and one millisecond later it is December 1st.
            *[up.email("post", utc(2026, 11, 30, 23)) for _ in range(5)],
        ]
    )
    drain(services)

    # Phase 2a: more mail for "pre" (runs it out of credit), upstream retries, bad input.
    up.publish(
        [
            *up.emails("pre", 4000, utc(2026, 11, 20, 12)),
            *pre_emails[:100],  # re-published: same source + id at new offsets
            credit,  # the credit purchase, re-published
            raw(settings.topic_email_sent, "pre", b'{"specversion": "1.0", "id": '),
            up.mta.event(
                settings.topic_email_sent,
                "email.sent",
                utc(2026, 11, 20),
                {"account_id": "pre", "route": "platform"},
            ),
            up.email("ghost", utc(2026, 11, 28)),
            raw(settings.topic_email_sent, "pre", up.email("post", utc(2026, 11, 20)).value),
        ]
    )
    drain(services)
    # Phase 2b: the customer tops up.
    up.publish([up.credit("pre", "20.00", utc(2026, 11, 25))])
    drain(services)

    documents = services.close_periods(utc(2026, 12, 1, 7))
    catch_up(services)
    reports = services.reports()

    # Numbers are allocated in account-id order within the close: post, then pre.
    assert [(d.number, d.account_id, str(d.period)) for d in documents] == [
        ("2026-000001", "post", "2026-11"),
        ("2026-000002", "pre", "2026-11"),
    ]

    # "post", postpaid volume: November volume 15,000 + 10 = 15,010; 5,000 included;
    # 10,010 paid at the tier 15,010 reaches (<=20,000: 0.0009): 9.0090 -> 9.01.
    # Subtotal 25.00 + 9.01 = 34.01, tax 0 -> total 34.01, due 14 days after Dec 1.
    post = reports.document("2026-000001")
    assert (post["kind"], str(post["issued_on"]), str(post["due_on"]), post["status"]) == (
        "invoice",
        "2026-12-01",
        "2026-12-15",
        "open",
    )
    assert [(line["kind"], line["quantity"], line["amount"]) for line in post["lines"]] == [
        ("fee", 1, Decimal("25.00")),
        ("included", 5000, Decimal("0.00")),
        ("usage", 10010, Decimal("9.01")),
    ]
    assert (post["subtotal"], post["tax"], post["total"]) == (
        Decimal("34.01"),
        Decimal("0.00"),
        Decimal("34.01"),
    )

    # "pre", prepaid graduated: 7,000 platform emails (3,000 + 4,000; duplicates dropped),
    # 1,000 included, 6,000 at 0.0010 = 6.00; 50 via custom SMTP, never charged.
    # Subtotal 10.00 + 6.00 = 16.00; tax 21% = 3.36; total 19.36.
    pre = reports.document("2026-000002")
    assert (pre["kind"], pre["due_on"], pre["status"]) == ("receipt", None, "paid")
    assert [(line["kind"], line["quantity"], line["amount"]) for line in pre["lines"]] == [
        ("fee", 1, Decimal("10.00")),
        ("included", 1000, Decimal("0.00")),
        ("usage", 6000, Decimal("6.00")),
        ("custom_smtp", 50, Decimal("0.00")),
    ]
    assert (pre["subtotal"], pre["tax"], pre["total"]) == (
        Decimal("16.00"),
        Decimal("3.36"),
        Decimal("19.36"),
    )

    # Balances. pre: credits 15 + 20 = 35; debits: Nov fee 10, usage 2.00 + 4.00 as sent,
    # close adjustment 19.36 - 16.00 = 3.36, Dec fee 10 -> 29.36; balance 5.64.
    # post: debits Nov fee 25 + 9.009 as sent + adjustment 34.01 - 34.009 = 0.001 + Dec fee 25
    # = 59.01; balance -59.01 (owed).
    pre_balance = reports.balance("pre")
    post_balance = reports.balance("post")
    assert (pre_balance["balance"], pre_balance["sending_blocked"]) == ("5.64", False)
    assert (post_balance["balance"], post_balance["owed"], post_balance["sending_blocked"]) == (
        "-59.01",
        "59.01",
        False,
    )

    # Monthly usage: the 5 emails of Dec 1 00:00 Amsterdam are December's.
    post_usage = {row["month"]: row for row in reports.usage("post")}
    assert (post_usage["2026-11"]["platform_emails"], post_usage["2026-11"]["charged_emails"]) == (
        15010,
        10010,
    )
    assert post_usage["2026-12"]["platform_emails"] == 5
    pre_usage = reports.usage("pre", "2026-11")[0]
    assert (
        pre_usage["platform_emails"],
        pre_usage["included_emails"],
        pre_usage["charged_emails"],
        pre_usage["custom_smtp_emails"],
        pre_usage["usage_amount"],
    ) == (7000, 1000, 6000, 50, "6.00")

    # Bad input: dead-lettered with the reason and coordinates, nothing dropped silently.
    dead = read_topic(services, settings.topic_dead_letter, expected=3)
    reasons = sorted(d["reason"].split(":")[0] for d in dead)
    assert reasons == [
        "Kafka key 'pre' is not the account id 'post'",
        "invalid email.sent",
        "not JSON",
    ]
    assert all(d["topic"] == settings.topic_email_sent and d["offset"] >= 0 for d in dead)
    recorder = services.ledger.process_recorder
    assert recorder.dead_letter_count() == 3  # type: ignore[attr-defined]
    # An email for an account not opened (yet) is parked until it opens, not refused.
    assert [
        (row["account_id"], row["facts"])
        for row in recorder.parked_by_account()  # type: ignore[attr-defined]
    ] == [("ghost", 1)]

    # Sending status, from the stored history through the outbox, once per change.
    services.status_publisher().catch_up()
    status = read_topic(services, settings.topic_account_status, expected=4)
    assert [(m["type"], m["data"]["account_id"], m["data"]["balance"]) for m in status] == [
        ("account.sending-blocked", "pre", "-10.00"),  # opened: the fee debited, no credit yet
        ("account.sending-unblocked", "pre", "5.00"),  # 15.00 credit - 10.00 fee
        ("account.sending-blocked", "pre", "-1.00"),  # 5.00 - 2.00 - 4.00 as the mail went out
        ("account.sending-unblocked", "pre", "19.00"),  # topped up 20.00
    ]
    assert len({m["id"] for m in status}) == 4

    # One stored event per account per batch, never one per email.
    assert (services.ledger.recorder.max_notification_id() or 0) < 60

    # An auditor traces an email to the event that billed it and the document that invoiced it.
    message_id = json.loads(pre_emails[0].value)["data"]["message_id"]
    traced = services.ledger.process_recorder.trace_message("pre", message_id)  # type: ignore[attr-defined]
    assert len(traced) == 1
    recorded = services.ledger.get_account("pre", version=traced[0]["originator_version"])
    assert recorded.months["2026-11"].platform >= 1


def test_late_usage_is_billed_on_the_next_document_naming_its_month(
    make_services: MakeServices,
) -> None:
    services = make_services()
    up = Upstreams(services)
    up.publish(
        [
            up.opened("pre", utc(2026, 11, 1), payment_mode="prepaid", tax_rate="0.21"),
            up.credit("pre", "50.00", utc(2026, 11, 1, 0, 1)),
            *up.emails("pre", 7000, utc(2026, 11, 20)),
        ]
    )
    drain(services)
    assert [d.number for d in services.close_periods(utc(2026, 12, 1, 7))] == ["2026-000001"]
    # Seven November emails reported after November was documented.
    up.publish(up.emails("pre", 7, utc(2026, 11, 28)))
    drain(services)
    documents = services.close_periods(utc(2027, 1, 1, 7))
    catch_up(services)
    # A new year starts a new sequence.
    assert [(d.number, str(d.period)) for d in documents] == [("2027-000001", "2026-12")]
    december = services.reports().document("2027-000001")
    # Late emails continue November's positions 7,001-7,007 at 0.0010 = 0.007 -> 0.01.
    # Subtotal 10.00 + 0.01 = 10.01; tax 21% = 2.1021 -> 2.10; total 12.11.
    assert [(line["kind"], line["quantity"], line["amount"]) for line in december["lines"]] == [
        ("fee", 1, Decimal("10.00")),
        ("late_usage", 7, Decimal("0.01")),
    ]
    assert "2026-11" in december["lines"][1]["description"]
    assert (december["subtotal"], december["tax"], december["total"]) == (
        Decimal("10.01"),
        Decimal("2.10"),
        Decimal("12.11"),
    )
    assert services.reports().usage("pre", "2026-11")[0]["late_emails"] == 7
