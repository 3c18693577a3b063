"""Seeded fuzzed input: good CloudEvents (with what they must bill) and bad ones.

Each bad message is a valid message broken by one named mutation (dropped
fields, wrong types, bad amounts, ids, zones and times, truncated JSON,
invalid UTF-8, huge values, the wrong topic or key, ...), or a message the
domain refuses (an unknown account or plan, a sub-cent credit). Used by
``test_fuzz.py``; one :class:`random.Random` decides everything.
"""

from __future__ import annotations

import itertools
import json
import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, timedelta, timezone
from decimal import Decimal
from typing import Any

from tests.support import utc

CLOCK = utc(2026, 12, 1, 12)  # the consumer's clock; LEDGER_MAX_FUTURE_SKEW stays PT5M
OFFSETS = [UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5, minutes=-30))]
BAD_IDS = [
    " x",
    "x ",
    "x\t",
    "a\nb",
    "a\x01b",
    "a\x7fb",
    "a\x85b",
    "\u200bx",
    "a\u202eb",
    "x" * 257,
    "",
]
BAD_AMOUNTS = [
    "1_000",
    "\uff11\uff12",
    "\u0663",
    " 7 ",
    "0.0001",
    "-5",
    "+5",
    "1e3",
    "NaN",
    "5.",
    10.5,
    7,
]
WRONG_VALUES: list[Any] = [1.5, True, None, [], {}]
BAD = "urn:fuzz:bad"  # the source of every bad message: never a good message's dedupe key
ROLES = ("email_sent", "accounts", "contact_changed")
STARTER_TERMS = {"plan": "email-starter", "currency": "EUR"}
BAD_TERMS: list[tuple[str, Any]] = [
    ("timezone", "localtime"),
    ("timezone", "right/UTC"),
    ("timezone", "posix/Europe/Paris"),
    ("timezone", "europe/amsterdam"),
    ("currency", "XYZ"),
    ("currency", "eur"),
    ("tax_rate", 0.21),
    ("tax_rate", "1"),
    ("tax_rate", "0.2_1"),
    ("payment_mode", "later"),
]
BAD_TIMES: list[Any] = [
    "2026-11-10T10:00:00",
    "2026-11-10T10:00Z",
    "2026-11-10 10:00:00Z",
    "2026-11-10T10:00:00+0100",
    1794823200,
    "1794823200",
    "1969-12-31T00:00:00Z",
]
ID_FIELDS = {
    "email.sent": ["account_id", "message_id"],
    "account.credit-purchased": ["account_id"],
    "contact.changed": ["account_id", "contact_id"],
}
REQUIRED = {
    "email.sent": ["account_id", "message_id", "route"],
    "account.credit-purchased": ["account_id", "amount"],
    "contact.changed": ["account_id", "contact_id", "version"],
}


@dataclass(frozen=True)
class Message:
    topic: str
    key: bytes | None
    value: bytes
    mutation: str | None = None  # None: a good message


class Fuzz:
    """Good messages (with what they must bill) and bad ones, from one seeded generator."""

    def __init__(self, rng: random.Random, topics: dict[str, str]) -> None:
        self.rng, self.topics, self.ids = rng, topics, itertools.count(1)
        self.platform: Counter[str] = Counter()
        self.smtp: Counter[str] = Counter()
        self.credits = Decimal(0)  # credited to "pre"
        self.contacts = 0  # billable contacts of "shop"
        self.mutations: Counter[str] = Counter()

    def event(
        self, kind: str, data: dict[str, Any], source: str = "urn:fuzz:good", at: Any = None
    ) -> dict[str, Any]:
        """A CloudEvent dated at ``at``, or at a random instant from Nov 2 to 29, any offset."""
        instant = at or utc(2026, 11, 2) + timedelta(seconds=self.rng.randrange(27 * 86400))
        return {
            "specversion": "1.0",
            "id": f"f-{next(self.ids)}",
            "source": source,
            "type": kind,
            "time": instant.astimezone(self.rng.choice(OFFSETS)).isoformat(),
            "data": data,
        }

    def message(self, role: str, body: dict[str, Any], mutation: str | None = None) -> Message:
        key = str(body["data"]["account_id"]).encode()
        return Message(self.topics[role], key, json.dumps(body).encode(), mutation)

    def openings(self) -> list[Message]:
        """The three accounts, opened on November 1st, before anything else is published."""
        opened = [
            {"account_id": "post", **STARTER_TERMS, "payment_mode": "postpaid"},
            {"account_id": "pre", **STARTER_TERMS, "payment_mode": "prepaid"},
            {
                "account_id": "shop",
                "plan": "contacts-basic",
                "currency": "EUR",
                "payment_mode": "postpaid",
            },
        ]
        return [
            self.message("accounts", self.event("account.opened", data, at=utc(2026, 11, 1)))
            for data in opened
        ]

    # ---------------------------------------------------------------- valid bodies

    def email(self, account: str, source: str = "urn:fuzz:good") -> dict[str, Any]:
        route = "custom_smtp" if self.rng.random() < 0.05 else "platform"
        return self.event(
            "email.sent",
            {"account_id": account, "message_id": f"<{next(self.ids)}@fuzz>", "route": route},
            source,
        )

    def credit(
        self, amount: str, account: str = "pre", source: str = "urn:fuzz:good"
    ) -> dict[str, Any]:
        return self.event(
            "account.credit-purchased", {"account_id": account, "amount": amount}, source
        )

    def contact(self, account: str = "shop", source: str = "urn:fuzz:good") -> dict[str, Any]:
        n = next(self.ids)
        return self.event(
            "contact.changed",
            {"account_id": account, "contact_id": f"k{n}", "version": 1, "email": f"k{n}@x"},
            source,
        )

    def good(self) -> Message:
        pick = self.rng.random()
        if pick < 0.85:
            body = self.email("post" if self.rng.random() < 0.8 else "pre")
            data = body["data"]
            (self.platform if data["route"] == "platform" else self.smtp)[data["account_id"]] += 1
            return self.message("email_sent", body)
        if pick < 0.9:
            amount = f"{self.rng.randrange(1, 100)}.{self.rng.randrange(100):02d}"
            self.credits += Decimal(amount)
            return self.message("accounts", self.credit(amount))
        self.contacts += 1
        return self.message("contact_changed", self.contact())

    # ---------------------------------------------------------------- bad ones

    def bad(self) -> Message:
        name = self.rng.choice(MUTATIONS)
        self.mutations[name] += 1
        mutated: Message = getattr(self, name)()
        return Message(mutated.topic, mutated.key, mutated.value, name)

    def _valid(self) -> tuple[str, dict[str, Any], bytes]:
        """A valid message (role, body, key) that a mutation breaks."""
        kind = self.rng.randrange(3)
        if kind == 0:
            role, body = "email_sent", self.email("post", BAD)
        elif kind == 1:
            role, body = "accounts", self.credit("5.00", source=BAD)
        else:
            role, body = "contact_changed", self.contact(source=BAD)
        return role, body, body["data"]["account_id"].encode()

    def _as(self, role: str, body: Any, key: bytes | None) -> Message:
        value = body if isinstance(body, bytes) else json.dumps(body).encode()
        return Message(self.topics[role], key, value)

    def drop_field(self) -> Message:
        role, body, key = self._valid()
        if self.rng.random() < 0.5:
            del body["data"][self.rng.choice(REQUIRED[body["type"]])]
        else:
            del body[self.rng.choice(["specversion", "id", "source", "type", "time", "data"])]
        return self._as(role, body, key)

    def wrong_type(self) -> Message:
        role, body, key = self._valid()
        fields = ["specversion", "id", "source", "time", "data"] + [
            f"data.{f}" for f in REQUIRED[body["type"]]
        ]
        where = self.rng.choice(fields)
        target = body["data"] if where.startswith("data.") else body
        target[where.removeprefix("data.")] = self.rng.choice(WRONG_VALUES)
        return self._as(role, body, key)

    def bad_amount(self) -> Message:
        return self._as("accounts", self.credit(self.rng.choice(BAD_AMOUNTS), source=BAD), b"pre")

    def sub_cent(self) -> Message:
        return self._as(
            "accounts",
            self.credit(self.rng.choice(["0.001", "12.345", "1.500"]), source=BAD),
            b"pre",
        )

    def bad_id(self) -> Message:
        role, body, key = self._valid()
        field = self.rng.choice(["id", "source", *ID_FIELDS[body["type"]]])
        (body if field in ("id", "source") else body["data"])[field] = self.rng.choice(BAD_IDS)
        return self._as(role, body, key)

    def bad_account_terms(self) -> Message:
        account = f"new-{next(self.ids)}"
        field, value = self.rng.choice(BAD_TERMS)
        data = {"account_id": account, **STARTER_TERMS, "payment_mode": "prepaid", field: value}
        return self._as("accounts", self.event("account.opened", data, BAD), account.encode())

    def unknown_plan(self) -> Message:
        account = f"new-{next(self.ids)}"
        data = {
            "account_id": account,
            "plan": "no-such-plan",
            "payment_mode": "prepaid",
            "currency": "EUR",
        }
        return self._as("accounts", self.event("account.opened", data, BAD), account.encode())

    def future_time(self) -> Message:
        role, body, key = self._valid()
        instant = self.rng.choice(
            [utc(2199, 1, 1), CLOCK + timedelta(minutes=6), CLOCK + timedelta(days=40)]
        )
        body["time"] = instant.astimezone(self.rng.choice(OFFSETS)).isoformat()
        return self._as(role, body, key)

    def bad_time(self) -> Message:
        role, body, key = self._valid()
        body["time"] = self.rng.choice(BAD_TIMES)
        return self._as(role, body, key)

    def truncated(self) -> Message:
        role, body, key = self._valid()
        value = json.dumps(body).encode()
        return self._as(role, value[: self.rng.randrange(1, len(value))], key)

    def invalid_utf8(self) -> Message:
        role, body, key = self._valid()
        value = json.dumps(body).encode()
        at = self.rng.randrange(len(value) + 1)
        return self._as(
            role,
            value[:at] + self.rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80"]) + value[at:],
            key,
        )

    def huge(self) -> Message:
        kind = self.rng.randrange(4)
        if kind == 0:
            return self._as("email_sent", b"[" * 50_000 + b"]" * 50_000, b"post")
        if kind == 1:
            return self._as("accounts", self.credit("9" * 50_000, source=BAD), b"pre")
        if kind == 2:
            body = self.contact(source=BAD)
            body["data"]["version"] = 10**40
            return self._as("contact_changed", body, b"shop")
        body = self.email("post", BAD)
        body["data"]["message_id"] = "m" * 100_000
        return self._as("email_sent", body, b"post")

    def wrong_topic(self) -> Message:
        role, body, key = self._valid()
        return self._as(self.rng.choice([r for r in ROLES if r != role]), body, key)

    def wrong_key(self) -> Message:
        role, body, key = self._valid()
        return self._as(
            role, body, self.rng.choice([b"someone-else", None, b"", b"\xff" + key, key + b" "])
        )

    def unknown_type(self) -> Message:
        role, body, key = self._valid()
        body["type"] = self.rng.choice(
            ["email.bounced", "payment.refunded", "EMAIL.SENT", ["email.sent"]]
        )
        return self._as(role, body, key)

    def not_object(self) -> Message:
        return self._as(
            "email_sent",
            self.rng.choice([b"[1, 2]", b"null", b"42", b'"email.sent"', b"true"]),
            b"post",
        )

    def empty(self) -> Message:
        return self._as(self.rng.choice(ROLES), b"", b"post")

    def nul(self) -> Message:
        role, body, key = self._valid()
        body["id"] = "f\u0000" + body["id"]
        return self._as(role, body, key)

    def bad_contact(self) -> Message:
        body = self.contact(source=BAD)
        field, value = self.rng.choice(
            [
                ("version", -1),
                ("version", "2"),
                ("web_push", "yes"),
                ("chat_replied", 1),
                ("email", 42),
            ]
        )
        body["data"][field] = value
        return self._as("contact_changed", body, b"shop")

    def unknown_account(self) -> Message:
        account = f"ghost-{next(self.ids)}"
        return self._as("email_sent", self.email(account, BAD), account.encode())

    def wrong_account_kind(self) -> Message:
        if self.rng.random() < 0.5:
            return self._as("contact_changed", self.contact("post", BAD), b"post")
        return self._as("accounts", self.credit("5.00", "shop", BAD), b"shop")

    def specversion(self) -> Message:
        role, body, key = self._valid()
        body["specversion"] = self.rng.choice(["0.3", "1", "1.0 ", "2.0", 1.0])
        return self._as(role, body, key)


MUTATIONS = [
    "drop_field",
    "wrong_type",
    "bad_amount",
    "sub_cent",
    "bad_id",
    "bad_account_terms",
    "unknown_plan",
    "future_time",
    "bad_time",
    "truncated",
    "invalid_utf8",
    "huge",
    "wrong_topic",
    "wrong_key",
    "unknown_type",
    "not_object",
    "empty",
    "nul",
    "bad_contact",
    "unknown_account",
    "wrong_account_kind",
    "specversion",
]
