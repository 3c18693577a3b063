"""What the CLI tests read: books billed through the broker and closed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg.sql import SQL, Identifier

from ledger.entrypoints.bootstrap import Services
from tests.conftest import MakeServices
from tests.support import Upstreams, catch_up, ledger_command, ledger_env, utc


def _books(make_services: MakeServices) -> dict[str, str]:
    services = make_services()
    up = Upstreams(services)
    up.publish(
        [
            up.opened("acme", utc(2026, 10, 2), payment_mode="prepaid", tax_rate="0.21"),
            up.credit("acme", "25.00", utc(2026, 10, 2, 1)),
            *up.emails("acme", 1500, utc(2026, 10, 15)),
        ]
    )
    consumer = services.consumer()
    consumer.drain(timeout=60)
    consumer.close()
    up.close()
    services.close_periods(utc(2026, 11, 1, 7))
    catch_up(services)
    return ledger_env(services.settings)


@pytest.fixture
def books(make_services: MakeServices) -> dict[str, str]:
    """A prepaid account's October billed through the broker and closed."""
    return _books(make_services)


@pytest.fixture(scope="module")
def books_once(module_services: MakeServices) -> dict[str, str]:
    """The same books, built once for a module's tests that only read them."""
    return _books(module_services)


@dataclass
class AuditedBooks:
    services: Services
    env: dict[str, str]
    upstreams: Upstreams

    def sql(self, statement: str, *params: object) -> list[tuple[object, ...]]:
        """``statement`` with ``{events}`` / ``{chain}`` naming this test's tables."""
        schema = self.services.settings.database_schema
        tables = {
            "events": SQL("{}.{}").format(Identifier(schema), Identifier("ledger_events")),
            "chain": SQL("{}.{}").format(Identifier(schema), Identifier("ledger_chain")),
        }
        with psycopg.connect(self.services.database_url, autocommit=True) as conn:
            cursor = conn.execute(SQL(statement).format(**tables), params)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    def ids(self) -> list[int]:
        return [int(r[0]) for r in self.sql("SELECT notification_id FROM {events} ORDER BY 1")]  # type: ignore[call-overload]

    def audit(self, *args: str) -> tuple[int, str]:
        result = ledger_command("audit", *args, env=self.env)
        assert "Traceback" not in result.stderr, result.stderr
        return result.returncode, result.stdout.strip()

    def more(self, account: str, day: int) -> None:
        """More history written by the ledger: an account opened and billed."""
        up = self.upstreams
        up.publish(
            [
                up.opened(account, utc(2026, 11, day)),
                *up.emails(account, 3, utc(2026, 11, day, 1)),
            ]
        )
        consumer = self.services.consumer()
        consumer.drain(timeout=60)
        consumer.close()


def _audited(make_services: MakeServices) -> Iterator[AuditedBooks]:
    services = make_services()
    written = AuditedBooks(services, ledger_env(services.settings), Upstreams(services))
    written.more("acme", 2)
    written.more("globex", 3)
    services.close_periods(utc(2026, 12, 1, 7))
    yield written
    written.upstreams.close()


@pytest.fixture
def audited(make_services: MakeServices) -> Iterator[AuditedBooks]:
    """Two accounts billed through the broker and a month closed, for the auditors' commands."""
    yield from _audited(make_services)


@pytest.fixture(scope="module")
def audited_once(module_services: MakeServices) -> Iterator[AuditedBooks]:
    """The same books, built once for a module whose tests do not change them."""
    yield from _audited(module_services)
