"""Test infrastructure: real PostgreSQL and a real Kafka-protocol broker.

Chosen once per session, in this order:
1. external services: ``LEDGER_TEST_DATABASE_URL`` / ``LEDGER_TEST_KAFKA_BOOTSTRAP``;
2. testcontainers (PostgreSQL 16, Apache Kafka in KRaft mode) when a Docker engine answers;
3. embedded: pgserver (PostgreSQL 16) and Tansu (Kafka wire protocol).
Each test gets its own PostgreSQL schema, topics and consumer group.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ledger.entrypoints.bootstrap import Services, bootstrap
from ledger.entrypoints.settings import Settings


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def infrastructure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with ExitStack() as stack:
        database_url = os.environ.get("LEDGER_TEST_DATABASE_URL")
        kafka_bootstrap = os.environ.get("LEDGER_TEST_KAFKA_BOOTSTRAP")
        kind = "external"
        if (database_url is None or kafka_bootstrap is None) and _docker_answers():
            kind = "testcontainers"
            if database_url is None:
                from testcontainers.community.postgres import PostgresContainer

                pg = stack.enter_context(PostgresContainer("postgres:16", driver=None))
                database_url = pg.get_connection_url()
            if kafka_bootstrap is None:
                from testcontainers.community.kafka import KafkaContainer

                kafka = stack.enter_context(
                    KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft()
                )
                kafka_bootstrap = kafka.get_bootstrap_server()
        if database_url is None or kafka_bootstrap is None:
            kind = "embedded"
            from ledger.entrypoints.embedded import start_broker, start_postgres

            if database_url is None:
                pg_embedded = start_postgres(
                    Path(tmp_path_factory.mktemp("pg")) / "data", persistent=False
                )
                stack.callback(pg_embedded.stop)
                database_url = pg_embedded.url
            if kafka_bootstrap is None:
                broker = start_broker()
                stack.callback(broker.stop)
                kafka_bootstrap = broker.bootstrap
        yield {"database_url": database_url, "kafka_bootstrap": kafka_bootstrap, "kind": kind}


def pytest_report_header(config: pytest.Config) -> str:
    return "ledger tests: real PostgreSQL + Kafka-protocol broker (external, testcontainers or embedded)"


MakeServices = Callable[..., Services]


@contextmanager
def isolated_settings(infrastructure: dict[str, str]) -> Iterator[Callable[..., Settings]]:
    """Settings of their own: a fresh schema, its own topics and consumer group."""
    schemas: list[str] = []
    suffix = uuid.uuid4().hex[:10]

    def make(**overrides: Any) -> Settings:
        schema = f"t_{suffix}"
        if schema not in schemas:
            with psycopg.connect(infrastructure["database_url"], autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            schemas.append(schema)
        values: dict[str, Any] = {
            "database_url": infrastructure["database_url"],
            "database_schema": schema,
            "kafka_bootstrap": infrastructure["kafka_bootstrap"],
            "topic_email_sent": f"t{suffix}.email-sent",
            "topic_contact_changed": f"t{suffix}.contact-changed",
            "topic_payments": f"t{suffix}.payments",
            "topic_accounts": f"t{suffix}.accounts",
            "topic_account_status": f"t{suffix}.account-status",
            "topic_notices": f"t{suffix}.notices",
            "topic_collections": f"t{suffix}.collections",
            "topic_dead_letter": f"t{suffix}.dead-letter",
            "topic_partitions": 2,
            "consumer_group": f"g{suffix}",
            "pg_pool_size": 3,
        }
        values.update(overrides)
        return Settings(**values)

    yield make
    for schema in schemas:
        with psycopg.connect(infrastructure["database_url"], autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextmanager
def services_maker(settings_for: Callable[..., Settings]) -> Iterator[MakeServices]:
    made: list[Services] = []

    def make(**overrides: Any) -> Services:
        services = bootstrap(settings_for(**overrides))
        services.ensure_topics()
        made.append(services)
        return services

    yield make
    for services in made:
        services.close()


@pytest.fixture
def settings_for(infrastructure: dict[str, str]) -> Iterator[Callable[..., Settings]]:
    """Settings isolated to this test."""
    with isolated_settings(infrastructure) as make:
        yield make


@pytest.fixture
def make_services(settings_for: Callable[..., Settings]) -> Iterator[MakeServices]:
    with services_maker(settings_for) as make:
        yield make


@pytest.fixture(scope="module")
def module_services(infrastructure: dict[str, str]) -> Iterator[MakeServices]:
    """Services shared by one module's tests: books built once for tests that only
    read them (a test that changes them restores what it changed)."""
    with isolated_settings(infrastructure) as settings, services_maker(settings) as make:
        yield make
