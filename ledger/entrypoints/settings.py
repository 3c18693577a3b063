"""Configuration: environment variables only (``LEDGER_*``), validated at start.

With ``LEDGER_DATABASE_URL`` / ``LEDGER_KAFKA_BOOTSTRAP`` unset the ledger
runs on embedded services (pgserver PostgreSQL, Tansu Kafka-protocol broker)
under ``LEDGER_HOME`` and says so. Secrets are ``SecretStr`` and never logged.
The fields and their validation are in ``settings_fields``; here pydantic-settings
reads them from the environment.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.entrypoints.settings_fields import (
    ENV_PREFIX,
    PROJECT_ROOT,
    SettingsFields,
    postgres_env,
)

__all__ = ["PROJECT_ROOT", "Settings", "postgres_env"]


class Settings(SettingsFields, BaseSettings):
    """Read from the environment (and validated) when made; keyword arguments win."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")
