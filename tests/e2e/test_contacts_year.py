"""A year of a contacts-billed account through the real broker and database, to the cent.

Plans (plans/contacts.toml):
- contacts-basic: tiers <=500 19.00, <=1,000 29.00, <=2,500 49.00, <=10,000 99.00;
  products automation 15.00, chat 10.00, web-push 5.00; overage 0.0010 an email;
  discounts quarter 5%, half-year 10%, year 15%; 4 emails a month per contact.
- contacts-pro: tiers <=1,000 49.00, <=5,000 99.00; products automation 15.00,
  sms 20.00, ...; overage 0.0008.

The account "shop" opens on 2026-01-31 10:00 UTC (anchor Jan 31, so renewals
on Feb 28, Mar 31, Apr 30, May 31, ...) on contacts-basic + automation,
monthly, tax 20%; from its Apr 30 renewal on, contacts-pro + automation + sms,
quarterly (a plan change that arrived after that renewal was priced). Every expected figure is worked out by hand in the comments.
Renewals are counted at local midnight of the renewal date (UTC here); the
close runs with a 6 h grace.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from commands.store import LedgerRecorder
from consumers.upstream_publisher import Outgoing
from ledger.contacts.account import contacts_as_of
from ledger.entrypoints.bootstrap import Services
from ledger.errors import LedgerError
from tests.conftest import MakeServices
from tests.support import Upstreams, catch_up, drain, utc

D = Decimal
GRACE = timedelta(hours=6)
Line = tuple[str, int, Decimal | None, Decimal]


def close(services: Services, as_of: datetime) -> list[str]:
    services.settings.close_grace = GRACE
    return [d.number for d in services.close_periods(as_of)]


def lines_of(services: Services, number: str) -> tuple[dict[str, Any], list[Line]]:
    document = services.reports().document(number)
    lines = [
        (line["kind"], line["quantity"], line["unit_price"], line["amount"])
        for line in document["lines"]
    ]
    return document, lines


def totals(document: dict[str, Any]) -> tuple[Decimal, Decimal, Decimal]:
    return document["subtotal"], document["tax"], document["total"]


def ledger_error(services: Services, proforma: str, at: datetime) -> str:
    try:
        services.pay_proforma("shop", proforma, at)
    except LedgerError as exc:
        return str(exc)
    raise AssertionError(f"paying {proforma} was accepted")


def contacts_at(services: Services, at: datetime) -> int:
    """What ``ledger contacts shop --as-of`` lists, checked against the stored versions."""
    listed = contacts_as_of(services.ledger.history("shop"), at)
    recorder = services.ledger.process_recorder
    assert isinstance(recorder, LedgerRecorder)
    stored = recorder.billable_contacts("shop", at)
    assert stored == {cid: list(change.reasons) for cid, change in listed.items()}
    return len(listed)


def test_a_year_of_a_contacts_account(make_services: MakeServices) -> None:
    services = make_services()
    up = Upstreams(services)
    opened_at = utc(2026, 1, 31, 10)
    trial = utc(2026, 1, 30, 12)  # contacts imported during the trial, before the opening

    # ---- January/February: 600 contacts with an email, 20 with nothing billable, 500 more
    # with a phone on Feb 10; 10 emails before the opening, 2,490 on Feb 15, 30 via SMTP.
    c_contacts = [up.contact("shop", f"c{i}", 1, trial, email=f"c{i}@x.test") for i in range(600)]
    first_emails = up.emails("shop", 2490, utc(2026, 2, 15, 9))
    up.publish(
        [
            up.opened(
                "shop",
                opened_at,
                plan="contacts-basic",
                products=["automation"],
                billing_period="month",
                tax_rate="0.20",
            ),
            *c_contacts,
            *[up.contact("shop", f"n{i}", 1, trial, chat_replied=False) for i in range(20)],
            *[
                up.contact("shop", f"d{i}", 1, utc(2026, 2, 10), phone=f"+31{i}")
                for i in range(500)
            ],
            *up.emails("shop", 10, utc(2026, 1, 31, 8)),
            *first_emails,
            *up.emails("shop", 30, utc(2026, 2, 15, 9), route="custom_smtp"),
            # Upstream retries: the same CloudEvents again are billed and counted once.
            *first_emails[:100],
            *c_contacts[:50],
        ]
    )
    drain(services)
    assert close(services, utc(2026, 2, 28, 5, 59)) == ["PF-shop-0001"]  # opening + 6 h passed
    assert close(services, utc(2026, 2, 28, 6)) == ["PF-shop-0002"]  # Feb 28 00:00 + 6 h
    catch_up(services)

    # PF-0001, Jan 31 - Feb 28, counted at the opening: the 600 c-contacts (tier 2, 29.00)
    # + automation 15.00 = 44.00 (the floor); tax 20% 8.80; total 52.80.
    assert contacts_at(services, opened_at) == 600
    pf1, lines = lines_of(services, "PF-shop-0001")
    assert lines == [("subscription", 1, D("29.00"), D("29.00")), ("product", 1, D("15"), D("15"))]
    assert totals(pf1) == (D("44.00"), D("8.80"), D("52.80"))
    assert (pf1["kind"], pf1["status"], pf1["billable_contacts"]) == ("proforma", "open", 600)
    assert pf1["period"] == "2026-01-31..2026-02-28"

    # PF-0002, Feb 28 - Mar 31, counted at Feb 28 00:00: 600 + 500 = 1,100 (tier 3, 49.00)
    # + automation 15.00 = 64.00. Month Jan 31 - Feb 28: allowance 4 x 600 = 2,400;
    # 10 + 2,490 = 2,500 platform emails -> 100 beyond at 0.0010 = 0.10; 30 via SMTP.
    # Subtotal 64.10; tax 12.82; total 76.92.
    assert contacts_at(services, utc(2026, 2, 28)) == 1100
    pf2, lines = lines_of(services, "PF-shop-0002")
    assert lines == [
        ("subscription", 1, D("49.00"), D("49.00")),
        ("product", 1, D("15"), D("15")),
        ("included", 2400, D("0"), D("0")),
        ("overage", 100, D("0.0010"), D("0.10")),
        ("custom_smtp", 30, D("0"), D("0")),
    ]
    assert totals(pf2) == (D("64.10"), D("12.82"), D("76.92"))

    # Both are paid: final invoices take the first numbers of 2026, in payment order.
    assert (
        services.pay_proforma("shop", "PF-shop-0001", utc(2026, 2, 28, 6)).number == "2026-000001"
    )
    assert services.pay_proforma("shop", "PF-shop-0002", utc(2026, 2, 28, 7)).number == (
        "2026-000002"
    )

    # ---- March: every c-contact deleted (1,100 -> 500); a stale c-change after the delete is
    # ignored; 4,000 emails (allowance 4 x 1,100 = 4,400: nothing beyond).
    up.publish(
        [
            *[up.contact_deleted("shop", f"c{i}", 2, utc(2026, 3, 5)) for i in range(600)],
            up.contact("shop", "c5", 1, utc(2026, 3, 6), email="late@x.test"),  # stale: v1 < v2
            *up.emails("shop", 4000, utc(2026, 3, 10)),
        ]
    )
    drain(services)
    assert close(services, utc(2026, 3, 31, 6)) == ["PF-shop-0003"]
    catch_up(services)
    # PF-0003, Mar 31 - Apr 30: 500 contacts (tier 1, 19.00) + 15.00 = 34.00, below the
    # floor 44.00: minimum price line 10.00 -> 44.00; 4,000 emails all included.
    # Tax 8.80; total 52.80.
    assert contacts_at(services, utc(2026, 3, 31)) == 500
    pf3, lines = lines_of(services, "PF-shop-0003")
    assert lines == [
        ("subscription", 1, D("19.00"), D("19.00")),
        ("product", 1, D("15"), D("15")),
        ("minimum_price", 1, None, D("10.00")),
        ("included", 4000, D("0"), D("0")),
    ]
    assert totals(pf3) == (D("44.00"), D("8.80"), D("52.80"))
    assert services.pay_proforma("shop", "PF-shop-0003", utc(2026, 3, 31, 8)).number == (
        "2026-000003"
    )

    # ---- April: 600 emails of March 20 reported late; c0..c49 re-created (v3, web push).
    up.publish(
        [
            *up.emails("shop", 600, utc(2026, 3, 20)),
            *[up.contact("shop", f"c{i}", 3, utc(2026, 4, 10), web_push=True) for i in range(50)],
        ]
    )
    drain(services)
    assert close(services, utc(2026, 4, 30, 6)) == ["PF-shop-0004"]
    catch_up(services)
    # PF-0004, Apr 30 - May 31: 550 contacts (tier 2, 29.00) + 15.00 = 44.00 (the floor, no
    # line); March now has 4,600 > 4,400: 200 late emails at 0.0010 = 0.20. Subtotal 44.20;
    # tax 8.84; total 53.04.
    pf4, lines = lines_of(services, "PF-shop-0004")
    assert lines == [
        ("subscription", 1, D("29.00"), D("29.00")),
        ("product", 1, D("15"), D("15")),
        ("late_overage", 200, D("0.0010"), D("0.20")),
    ]
    assert totals(pf4) == (D("44.20"), D("8.84"), D("53.04"))

    # Then, before PF-0004 is paid, two facts dated before its renewal arrive late:
    # 460 contacts that existed on Apr 20, and a move (dated Apr 29) to contacts-pro with
    # automation + sms, quarterly.
    up.publish(
        [
            *[up.contact("shop", f"e{i}", 1, utc(2026, 4, 20), email="e@x") for i in range(460)],
            up.plan_changed(
                "shop",
                "contacts-pro",
                utc(2026, 4, 29),
                products=["automation", "sms"],
                billing_period="quarter",
            ),
        ]
    )
    drain(services)
    assert close(services, utc(2026, 4, 30, 12)) == ["PF-shop-0005"]
    catch_up(services)
    # The Apr 30 instant is priced, so it is never counted again: the late contacts count
    # from just after it (next renewal), and the listing for Apr 30 still gives 550.
    assert contacts_at(services, utc(2026, 4, 30)) == 550
    assert contacts_at(services, utc(2026, 4, 30) + timedelta(microseconds=1)) == 1010
    # The plan change missed the renewal it was dated before: the unpaid PF-0004 is
    # replaced, the new subscription starting Apr 30 with the same 550 contacts:
    # contacts-pro tier 1 (<=1,000) 3 x 49.00 = 147.00; automation 3 x 15.00 = 45.00; sms
    # 3 x 20.00 = 60.00; gross 252.00, quarterly discount 5% = 12.60 -> 239.40 (the new
    # floor); the late 0.20 carried. Subtotal 239.60; tax 47.92; total 287.52.
    pf4, _ = lines_of(services, "PF-shop-0004")
    assert (pf4["status"], pf4["settled_by"]) == ("replaced", "PF-shop-0005")
    pf5, lines = lines_of(services, "PF-shop-0005")
    assert lines == [
        ("subscription", 3, D("49.00"), D("147.00")),
        ("product", 3, D("15"), D("45.00")),
        ("product", 3, D("20"), D("60.00")),
        ("period_discount", 1, None, D("-12.60")),
        ("late_overage", 200, D("0.0010"), D("0.20")),
    ]
    assert totals(pf5) == (D("239.60"), D("47.92"), D("287.52"))
    assert (pf5["period"], pf5["billable_contacts"]) == ("2026-04-30..2026-07-31", 550)
    assert services.reports().balance("shop")["plan_id"] == "contacts-pro"
    paying_old = ledger_error(services, "PF-shop-0004", utc(2026, 4, 30, 13))
    assert paying_old.endswith("it was replaced by PF-shop-0005")
    assert services.pay_proforma("shop", "PF-shop-0005", utc(2026, 4, 30, 13)).number == (
        "2026-000004"
    )

    # ---- May: the 20 n-contacts reply in chat (1,010 -> 1,030). May 31 is no renewal of the
    # quarter, and its month (Apr 30 - May 31) had no email: nothing to issue.
    up.publish(
        [*[up.contact("shop", f"n{i}", 2, utc(2026, 5, 3), chat_replied=True) for i in range(20)]]
    )
    drain(services)
    assert close(services, utc(2026, 5, 31, 6)) == []

    # ---- June: 5,120 emails (allowance 4 x 550 = 2,200 a month, also in a quarter) and 100
    # via SMTP. June 30 is no renewal: the overage gets a proforma of its own then.
    up.publish(
        [
            *up.emails("shop", 5120, utc(2026, 6, 10)),
            *up.emails("shop", 100, utc(2026, 6, 11), route="custom_smtp"),
        ]
    )
    drain(services)
    assert close(services, utc(2026, 6, 30, 6)) == ["PF-shop-0006"]
    catch_up(services)
    # PF-0006, May 31 - Jun 30: 5,120 - 2,200 = 2,920 beyond at 0.0008 = 2.336 -> 2.34;
    # tax 0.468 -> 0.47; total 2.81.
    pf6, lines = lines_of(services, "PF-shop-0006")
    assert lines == [
        ("included", 2200, D("0"), D("0")),
        ("overage", 2920, D("0.0008"), D("2.34")),
        ("custom_smtp", 100, D("0"), D("0")),
    ]
    assert totals(pf6) == (D("2.34"), D("0.47"), D("2.81"))
    assert pf6["period"] == "2026-05-31..2026-06-30"
    assert services.pay_proforma("shop", "PF-shop-0006", utc(2026, 7, 1)).number == "2026-000005"

    # ---- Jul 31 renewal: 550 + 460 + 20 = 1,030 contacts, contacts-pro tier 2 (<=5,000):
    # 3 x 99.00 = 297.00 + 45.00 + 60.00 = 402.00 less 5% 20.10 = 381.90 (above the floor).
    assert close(services, utc(2026, 7, 31, 6)) == ["PF-shop-0007"]
    catch_up(services)
    assert contacts_at(services, utc(2026, 7, 31)) == 1030
    pf7, lines = lines_of(services, "PF-shop-0007")
    assert lines == [
        ("subscription", 3, D("99.00"), D("297.00")),
        ("product", 3, D("15"), D("45.00")),
        ("product", 3, D("20"), D("60.00")),
        ("period_discount", 1, None, D("-20.10")),
    ]
    assert totals(pf7) == (D("381.90"), D("76.38"), D("458.28"))
    assert pf7["period"] == "2026-07-31..2026-10-31"
    assert services.pay_proforma("shop", "PF-shop-0007", utc(2026, 8, 1)).number == "2026-000006"

    # ---- September: the d- and e-contacts are deleted: 50 c + 20 n = 70 remain.
    up.publish(
        [
            *[up.contact_deleted("shop", f"d{i}", 2, utc(2026, 9, 1)) for i in range(500)],
            *[up.contact_deleted("shop", f"e{i}", 2, utc(2026, 9, 1)) for i in range(460)],
        ]
    )
    drain(services)
    assert close(services, utc(2026, 10, 31, 6)) == ["PF-shop-0008"]
    catch_up(services)
    # PF-0008, Oct 31 - Jan 31 2027: 70 contacts (tier 1) 147.00 + 45.00 + 60.00 = 252.00,
    # less 12.60 = 239.40: exactly the floor, so no minimum-price line.
    assert contacts_at(services, utc(2026, 10, 31)) == 70
    pf8, lines = lines_of(services, "PF-shop-0008")
    assert [line[0] for line in lines] == [
        "subscription",
        "product",
        "product",
        "period_discount",
    ]
    assert totals(pf8) == (D("239.40"), D("47.88"), D("287.28"))
    assert pf8["period"] == "2026-10-31..2027-01-31"
    assert services.pay_proforma("shop", "PF-shop-0008", utc(2026, 11, 2)).number == "2026-000007"
    catch_up(services)

    # The books: 8 proformas (one replaced), 7 invoices numbered without a gap.
    documents = services.reports().documents_of("shop")
    invoices = [d for d in documents if d["kind"] == "invoice"]
    assert [d["number"] for d in invoices] == [f"2026-00000{n}" for n in range(1, 8)]
    assert all(d["status"] == "paid" for d in invoices)
    proformas = {d["number"]: d["status"] for d in documents if d["kind"] == "proforma"}
    assert proformas == {
        **{f"PF-shop-000{n}": "paid" for n in range(1, 9) if n != 4},
        "PF-shop-0004": "replaced",
    }
    count = services.reports().contact_count("shop")
    # Applied changes: 600 + 20 + 500 + 600 deletes + 50 re-created + 460 + 20 + 960 deletes.
    assert (count["billable_contacts"], count["changes_applied"]) == (70, 3210)
    # Dedupe: the 100 re-sent emails and 50 re-sent contacts were not applied again.
    months = services.reports().allowance_usage("shop")
    assert [(m["period_start"].isoformat(), m["platform_emails"]) for m in months[:2]] == [
        ("2026-01-31", 2500),
        ("2026-02-28", 4600),
    ]


def test_bad_contact_changes_are_dead_lettered(make_services: MakeServices) -> None:
    services = make_services()
    services.clock = lambda: utc(2026, 1, 2)  # the parking bound is measured against it
    up = Upstreams(services)
    topic = services.settings.topic_contact_changed
    good = up.contact("shop", "a", 1, utc(2026, 1, 1), email="a@x")
    bad_version = up.contact("shop", "b", 1, utc(2026, 1, 1), email="b@x")
    body = bad_version.value.replace(b'"version": 1', b'"version": "one"')
    up.publish(
        [
            up.opened("shop", utc(2026, 1, 1), plan="contacts-basic"),
            up.opened("mail", utc(2026, 1, 1)),
            good,
            Outgoing(topic, "shop", body),
            up.contact("ghost", "g", 1, utc(2026, 1, 1), email="g@x"),  # unknown account
            up.contact("mail", "m", 1, utc(2026, 1, 1), email="m@x"),  # an email-plan account
        ]
    )
    drain(services)
    recorder = services.ledger.process_recorder
    assert isinstance(recorder, LedgerRecorder)
    reasons = sorted(row["reason"] for row in recorder.dead_letters())
    assert len(reasons) == 2
    assert reasons[0].startswith("account 'mail' is billed by emails")
    assert "version" in reasons[1]
    # A change for an account not opened (yet) waits for it, parked.
    assert [(r["account_id"], r["facts"]) for r in recorder.parked_by_account()] == [("ghost", 1)]
    assert recorder.billable_contacts("shop", utc(2026, 1, 2)) == {"a": ["email"]}
