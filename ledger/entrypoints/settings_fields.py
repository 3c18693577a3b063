"""The settings' fields, their defaults and their validation: a plain pydantic model.

``Settings`` (ledger.entrypoints.settings) reads these fields from the environment
with pydantic-settings. A read of the books reads them with
:meth:`SettingsFields.from_environment` instead: the same fields, validators and
messages, without importing pydantic-settings and its sources (dotenv, the cloud
providers, its own CLI parser), ~18 ms of a command that answers in a quarter of a
second (bench/cli_startup.py). Only pydantic, which typer already loads to parse a
command's parameters. ``postgres_env`` is here for the same reason: a history read
opens the ledger application with it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr

#: A setting ``name`` is read from the variable ``LEDGER_<NAME>``, in any case.
ENV_PREFIX = "LEDGER_"


PROJECT_ROOT = Path(__file__).resolve().parents[2]


class SettingsFields(BaseModel):
    # As pydantic-settings configures a BaseSettings: defaults validated too, and
    # variables of the prefix that name no setting ignored.
    model_config = ConfigDict(extra="ignore", validate_default=True)

    database_url: str | None = None
    database_schema: str = "public"
    kafka_bootstrap: str | None = None
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None

    topic_email_sent: str = "billing.email-sent"
    topic_contact_changed: str = "billing.contact-changed"
    topic_payments: str = "billing.payments"
    topic_accounts: str = "billing.accounts"
    topic_account_status: str = "billing.account-status"
    topic_notices: str = "billing.notices"
    topic_collections: str = "billing.collections"
    topic_audit: str = "billing.audit"
    topic_dead_letter: str = "billing.dead-letter"
    topic_partitions: int = Field(default=4, ge=1)

    consumer_group: str = "billing-ledger"
    #: Consumer processes ``serve`` runs in the group: one keeps one core busy.
    consumer_processes: int = Field(default=1, ge=1, le=64)
    # Bigger batches amortise the per-account event and the per-transaction
    # costs over more emails (one event per account and month per batch, whatever its size).
    batch_max_records: int = Field(default=20000, ge=1)
    #: How long a partition's usage records may wait to be applied together: a live
    #: stream then stores about as few events as a backlog (``consumers/gathering.py``).
    batch_gather: timedelta = Field(
        default=timedelta(milliseconds=200), ge=timedelta(0), le=timedelta(seconds=5)
    )
    plans_dir: Path = PROJECT_ROOT / "plans"
    # Never negative: a negative grace would document a month before it ended.
    close_grace: timedelta = Field(default=timedelta(hours=6), ge=timedelta(0))
    close_interval: timedelta = timedelta(minutes=5)
    #: How often ``serve``'s publisher publishes the hash chain's head (when it moved).
    audit_head_interval: timedelta = Field(default=timedelta(minutes=1), gt=timedelta(0))
    #: With the embedded broker (in memory), how long ``serve`` keeps consuming
    #: after SIGTERM, so that what was published before the stop is billed.
    stop_drain_timeout: timedelta = timedelta(seconds=10)
    #: How far past this machine's clock a time may be (event times, ``close-periods
    #: --as-of``): upstream clocks drift; a later event would move its account's
    #: business time into the future.
    max_future_skew: timedelta = Field(default=timedelta(minutes=5), ge=timedelta(0))
    #: How long (in event time, against the clock) a fact waits for its account to
    #: open before it is dead-lettered (ISO 8601 duration, e.g. P7D or PT12H).
    park_max_age: timedelta = Field(default=timedelta(days=7), gt=timedelta(0))
    home: Path = Path(".ledger")
    metrics_port: int | None = None
    #: Loopback by default: the metrics say who bills what; expose them on purpose.
    metrics_host: str = "127.0.0.1"
    #: After a stop (signal or a crashed role), ``serve`` exits within this, stuck threads or not.
    shutdown_timeout: timedelta = Field(default=timedelta(seconds=15), gt=timedelta(0))
    pg_pool_size: int = 5

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def uses_embedded_kafka(self) -> bool:
        return self.kafka_bootstrap is None

    def kafka_config(self, bootstrap: str) -> dict[str, Any]:
        config: dict[str, Any] = {
            "bootstrap_servers": bootstrap.split(","),
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_sasl_mechanism:
            config["sasl_mechanism"] = self.kafka_sasl_mechanism
            config["sasl_plain_username"] = self.kafka_sasl_username
            if self.kafka_sasl_password is not None:
                config["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_ssl_cafile:
            config["ssl_cafile"] = self.kafka_ssl_cafile
        return config

    def input_topics(self) -> dict[str, str]:
        """Role -> topic name of the topics the consumers read today."""
        return {
            "accounts": self.topic_accounts,
            "email_sent": self.topic_email_sent,
            "contact_changed": self.topic_contact_changed,
            "payments": self.topic_payments,
        }

    def all_topics(self) -> list[str]:
        return [
            self.topic_email_sent,
            self.topic_contact_changed,
            self.topic_payments,
            self.topic_accounts,
            self.topic_account_status,
            self.topic_notices,
            self.topic_collections,
            self.topic_audit,
            self.topic_dead_letter,
        ]

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Self:
        """The settings as ``Settings()`` reads them from ``environ``.

        pydantic-settings' environment source, for fields that are all scalars: the
        variable's name in any case (lower-cased, the last of two spellings wins),
        its text given to the field's validator as it is (no JSON decoding, which
        only lists, dicts and models get). tests/unit/test_settings_fields.py holds
        the two readings equal, values and errors.
        """
        variables = {name.lower(): value for name, value in environ.items()}
        prefix = ENV_PREFIX.lower()
        return cls.model_validate(
            {
                field: variables[prefix + field]
                for field in cls.model_fields
                if prefix + field in variables
            }
        )


def postgres_env(
    database_url: str, schema: str, pool_size: int, *, create_tables: bool = True
) -> dict[str, str]:
    """The eventsourcing persistence environment of the ledger's PostgreSQL."""
    from psycopg.conninfo import conninfo_to_dict  # psycopg: for the commands that connect

    info = conninfo_to_dict(database_url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(info.get("dbname", "postgres")),
        "POSTGRES_HOST": str(info.get("host", "localhost")),
        "POSTGRES_PORT": str(info.get("port", "5432")),
        "POSTGRES_USER": str(info.get("user", "postgres")),
        "POSTGRES_PASSWORD": str(info.get("password", "")),
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(pool_size),
        # Never wait forever for the events table lock; a timed-out batch is redone.
        "POSTGRES_LOCK_TIMEOUT": "10",
        # Off on purpose: with DB functions on, a process recorder drops Tracking.
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
        "PROCESS_RECORDER_TOPIC": "commands.store:LedgerRecorder",
        "CREATE_TABLE": "y" if create_tables else "n",
    }
