"""Helpers shared by integration and end-to-end tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from kafka import KafkaConsumer, TopicPartition

from consumers.positions import stored_position
from consumers.runner import LedgerConsumer
from consumers.upstream_publisher import Outgoing, Upstream, producer, publish
from ledger.entrypoints.bootstrap import Services

T = TypeVar("T")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def wait_for(condition: Callable[[], T], timeout: float = 30.0, what: str = "condition") -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def poll_until(
    consumer: LedgerConsumer, condition: Callable[[], bool], what: str, timeout: float = 60.0
) -> None:
    """Run the consumer until ``condition`` holds with no save in flight; fail after
    ``timeout`` seconds. Polls back to back, as the service does: gaps between polls
    can stall a new member's first assignment for tens of seconds (embedded broker)."""
    deadline = time.monotonic() + timeout
    while True:
        consumer.poll_once()
        if not consumer.in_flight and condition():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Upstreams:
    """The fake upstream systems of a test, bound to its topics."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self.mta = Upstream("urn:test:mta")
        self.panel = Upstream("urn:test:panel")
        self.crm = Upstream("urn:test:crm")
        self.bridge = Upstream("urn:test:payment-bridge")
        self.kafka = producer(services.kafka_config)

    def opened(self, account: str, at: datetime, **data: Any) -> Outgoing:
        body = {
            "account_id": account,
            "plan": "email-starter",
            "payment_mode": "postpaid",
            "currency": "EUR",
        }
        body.update(data)
        return self.panel.event(self.settings.topic_accounts, "account.opened", at, body)

    def credit(self, account: str, amount: str, at: datetime) -> Outgoing:
        return self.panel.event(
            self.settings.topic_accounts,
            "account.credit-purchased",
            at,
            {"account_id": account, "amount": amount},
        )

    def plan_changed(self, account: str, plan: str, at: datetime, **data: Any) -> Outgoing:
        return self.panel.event(
            self.settings.topic_accounts,
            "account.plan-changed",
            at,
            {"account_id": account, "plan": plan, **data},
        )

    def contact(
        self, account: str, contact_id: str, version: int, at: datetime, **fields: Any
    ) -> Outgoing:
        """``contact.changed``; identifiers not given are null / false (not billable)."""
        return self.crm.event(
            self.settings.topic_contact_changed,
            "contact.changed",
            at,
            {"account_id": account, "contact_id": contact_id, "version": version, **fields},
        )

    def contact_deleted(
        self, account: str, contact_id: str, version: int, at: datetime
    ) -> Outgoing:
        return self.crm.event(
            self.settings.topic_contact_changed,
            "contact.deleted",
            at,
            {"account_id": account, "contact_id": contact_id, "version": version},
        )

    def email(
        self, account: str, at: datetime, route: str = "platform", message_id: str | None = None
    ) -> Outgoing:
        message = self.mta.event(
            self.settings.topic_email_sent,
            "email.sent",
            at,
            {"account_id": account, "message_id": message_id or "m", "route": route},
        )
        if message_id is None:
            body = json.loads(message.value)
            body["data"]["message_id"] = f"<{body['id']}@test>"
            message = Outgoing(message.topic, message.key, json.dumps(body).encode())
        return message

    def emails(
        self, account: str, count: int, at: datetime, route: str = "platform"
    ) -> list[Outgoing]:
        return [self.email(account, at, route) for _ in range(count)]

    def payment(
        self,
        account: str,
        amount: str,
        at: datetime,
        reference: str | None = None,
        currency: str = "EUR",
        **data: Any,
    ) -> Outgoing:
        """``payment.succeeded``; ``event_id`` reuses a CloudEvent id (a re-published one)."""
        event_id = data.pop("event_id", None)
        body = {"account_id": account, "amount": amount, "currency": currency, **data}
        if reference is not None:
            body["reference"] = reference
        return self.bridge.event(
            self.settings.topic_payments, "payment.succeeded", at, body, event_id
        )

    def payment_failed(
        self, account: str, amount: str, at: datetime, reference: str, reason: str, **data: Any
    ) -> Outgoing:
        body = {
            "account_id": account,
            "amount": amount,
            "currency": "EUR",
            "reference": reference,
            "reason": reason,
            **data,
        }
        return self.bridge.event(self.settings.topic_payments, "payment.failed", at, body)

    def publish(self, messages: list[Outgoing]) -> int:
        return publish(self.kafka, messages)

    def close(self) -> None:
        self.kafka.close()


def read_topic(
    services: Services, topic: str, expected: int | None = None, timeout: float = 15.0
) -> list[dict[str, Any]]:
    """Every message on ``topic`` (JSON), waiting until at least ``expected`` are there."""
    consumer = KafkaConsumer(**services.kafka_config, enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            ends = consumer.end_offsets(partitions)
            for records in consumer.poll(timeout_ms=100).values():
                messages.extend(json.loads(r.value) for r in records)
            drained = all(consumer.position(tp) >= ends[tp] for tp in partitions)
            if drained and (expected is None or len(messages) >= expected):
                return messages
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: {len(messages)} messages, expected {expected}")
    finally:
        consumer.close()


def json_lines(log: Path, start: int = 0) -> list[dict[str, Any]]:
    """The JSON lines of a log file from byte ``start`` (a line still being written is skipped)."""
    found = []
    with log.open("rb") as handle:
        handle.seek(start)
        for line in handle.read().decode(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    return found


def open_postpaid(services: Services, count: int) -> None:
    """``acct-000`` .. on email-starter, postpaid, opened 2026-10-01, in one batch (no broker)."""
    from commands.handlers import BatchWork, apply_commands, save_batch
    from commands.models import OpenAccount

    work = BatchWork(services.ledger, services.catalogue)
    apply_commands(
        [
            OpenAccount(
                account_id=f"acct-{i:03d}",
                plan="email-starter",
                payment_mode="postpaid",
                currency="EUR",
                at=utc(2026, 10, 1),
            )
            for i in range(count)
        ],
        work,
    )
    save_batch(work, None)


def drain(services: Services, timeout: float = 60.0) -> None:
    """A consumer of its own, run until every partition's stored position is at its end."""
    consumer = services.consumer()
    try:
        consumer.drain(timeout=timeout)
    finally:
        consumer.close()


def catch_up(services: Services) -> None:
    services.read_models().catch_up()


def assert_each_billed(
    services: Services,
    accounts: list[str],
    month: str,
    *,
    emails: int,
    included: int,
    charged: int,
    amount: str,
    balance: str,
) -> None:
    """Every account's usage of ``month`` and balance, as the test worked them out by hand."""
    catch_up(services)
    reports = services.reports()
    for account in accounts:
        usage = reports.usage(account, month)[0]
        assert (usage["platform_emails"], usage["included_emails"], usage["charged_emails"]) == (
            emails,
            included,
            charged,
        ), account
        assert usage["usage_amount"] == amount, account
        assert reports.balance(account)["balance"] == balance, account


def positions_at_end(services: Services, topics: list[str]) -> bool:
    """Whether the Kafka positions stored in PostgreSQL have reached every partition's end."""
    consumer = KafkaConsumer(**services.kafka_config, enable_auto_commit=False)
    try:
        partitions = []
        for topic in topics:
            numbers = consumer.partitions_for_topic(topic)
            if not numbers:  # no metadata yet: not known to be at the end
                return False
            partitions += [TopicPartition(topic, p) for p in sorted(numbers)]
        ends = consumer.end_offsets(partitions)
    finally:
        consumer.close()
    for tp, end in ends.items():
        stored = stored_position(services.ledger, tp.topic, tp.partition)
        if (-1 if stored is None else stored) + 1 < end:
            return False
    return True


def ledger_env(settings: Any) -> dict[str, str]:
    """Environment for a ``ledger`` process configured like ``settings``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("LEDGER_")}
    for name, value in settings.model_dump().items():
        if value is not None and name.startswith(
            ("database_", "kafka_bootstrap", "topic_", "consumer_group")
        ):
            env[f"LEDGER_{name.upper()}"] = str(value)
    return env


def ledger_command(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    executable = Path(sys.executable).with_name("ledger")
    return subprocess.run(
        [str(executable), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
