"""Configuration: environment variables only (``LEDGER_*``), validated at start.

With ``LEDGER_DATABASE_URL`` / ``LEDGER_KAFKA_BOOTSTRAP`` unset the ledger
runs on embedded services (pgserver PostgreSQL, Tansu Kafka-protocol broker)
under ``LEDGER_HOME`` and says so. Secrets are ``SecretStr`` and never logged.
The fields and their validation are in ``settings_fields``; here pydantic-settings
reads them from the environment.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.entrypoints.settings_fields import ENV_PREFIX, PROJECT_ROOT, SettingsFields

__all__ = ["PROJECT_ROOT", "Settings", "postgres_env"]


class Settings(SettingsFields, BaseSettings):
    """Read from the environment (and validated) when made; keyword arguments win."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")


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
