"""A read of the books reads its settings without pydantic-settings
(``SettingsFields.from_environment``): it must read exactly what ``Settings()``
reads from the same environment, and refuse what it refuses with the same error."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from ledger.entrypoints.settings import Settings
from ledger.entrypoints.settings_fields import SettingsFields

#: A value other than the default for every setting, as an operator writes it.
EVERY_SETTING = {
    "LEDGER_DATABASE_URL": "postgresql://ledger:secret@db.internal:6432/books?sslmode=require",
    "LEDGER_DATABASE_SCHEMA": "billing",
    "LEDGER_KAFKA_BOOTSTRAP": "k1:9092,k2:9092",
    "LEDGER_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "LEDGER_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "LEDGER_KAFKA_SASL_USERNAME": "ledger",
    "LEDGER_KAFKA_SASL_PASSWORD": "hunter2",
    "LEDGER_KAFKA_SSL_CAFILE": "/etc/ssl/kafka.pem",
    "LEDGER_TOPIC_EMAIL_SENT": "mta.sent",
    "LEDGER_TOPIC_CONTACT_CHANGED": "crm.contacts",
    "LEDGER_TOPIC_PAYMENTS": "psp.payments",
    "LEDGER_TOPIC_ACCOUNTS": "panel.accounts",
    "LEDGER_TOPIC_ACCOUNT_STATUS": "ledger.status",
    "LEDGER_TOPIC_NOTICES": "ledger.notices",
    "LEDGER_TOPIC_COLLECTIONS": "ledger.collections",
    "LEDGER_TOPIC_AUDIT": "ledger.audit",
    "LEDGER_TOPIC_DEAD_LETTER": "ledger.dlq",
    "LEDGER_TOPIC_PARTITIONS": "12",
    "LEDGER_CONSUMER_GROUP": "ledger-eu",
    "LEDGER_CONSUMER_PROCESSES": "3",
    "LEDGER_BATCH_MAX_RECORDS": "5000",
    "LEDGER_BATCH_GATHER": "PT0.25S",
    "LEDGER_PLANS_DIR": "/srv/plans",
    "LEDGER_CLOSE_GRACE": "PT12H",
    "LEDGER_CLOSE_INTERVAL": "PT1M",
    "LEDGER_AUDIT_HEAD_INTERVAL": "PT30S",
    "LEDGER_STOP_DRAIN_TIMEOUT": "PT30S",
    "LEDGER_MAX_FUTURE_SKEW": "PT1M",
    "LEDGER_PARK_MAX_AGE": "P3D",
    "LEDGER_HOME": "/var/lib/ledger",
    "LEDGER_METRICS_PORT": "9464",
    "LEDGER_METRICS_HOST": "0.0.0.0",
    "LEDGER_SHUTDOWN_TIMEOUT": "PT20S",
    "LEDGER_PG_POOL_SIZE": "8",
}


def read_both(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> tuple[Any, Any]:
    """What each reading gives under ``env`` (and no other LEDGER_ variable): the
    values, or the errors as the CLI reports them."""
    for name in list(os.environ):
        if name.lower().startswith("ledger_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    results = []
    for read in (Settings, SettingsFields.from_environment):
        try:
            results.append(read().model_dump())
        except ValidationError as exc:
            results.append(exc.errors(include_url=False))
    return results[0], results[1]


def test_every_setting_is_read_as_the_service_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert {f"LEDGER_{name.upper()}" for name in Settings.model_fields} == set(EVERY_SETTING)
    service, read = read_both(monkeypatch, EVERY_SETTING)
    assert isinstance(service, dict)
    assert read == service
    assert (read["topic_partitions"], read["batch_gather"]) == (12, timedelta(milliseconds=250))
    assert read["kafka_sasl_password"].get_secret_value() == "hunter2"


def test_unset_settings_are_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    service, read = read_both(monkeypatch, {})
    assert read == service
    assert (read["database_url"], read["database_schema"]) == (None, "public")


@pytest.mark.parametrize(
    "env",
    [
        {"ledger_database_url": "postgresql:///lower", "Ledger_Home": "/mixed/case"},
        {"LEDGER_DATABASE_URL": "", "LEDGER_DATABASE_SCHEMA": "  spaced  ", "LEDGER_HOME": ""},
        {"LEDGER_NOT_A_SETTING": "ignored", "LEDGER_TOPIC_PARTITIONS": " 7 "},
    ],
    ids=["any-case", "empty-and-spaced-text", "unknown-name-and-padded-number"],
)
def test_names_and_texts_are_read_as_the_service_reads_them(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    service, read = read_both(monkeypatch, env)
    assert read == service


@pytest.mark.parametrize(
    "env",
    [
        {"LEDGER_TOPIC_PARTITIONS": "0"},
        {"LEDGER_CONSUMER_PROCESSES": "many"},
        {"LEDGER_KAFKA_SECURITY_PROTOCOL": "plaintext"},
        {"LEDGER_CLOSE_GRACE": "-PT1H"},
        {"LEDGER_METRICS_PORT": ""},
        {"LEDGER_BATCH_GATHER": "PT10S", "LEDGER_PARK_MAX_AGE": "0"},
    ],
    ids=["below-minimum", "not-a-number", "not-a-choice", "negative", "empty", "two-bad"],
)
def test_a_bad_setting_is_refused_with_the_services_errors(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    service, read = read_both(monkeypatch, env)
    assert isinstance(service, list)
    assert read == service
