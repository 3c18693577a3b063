"""The edges that start and wire the ledger: settings, bootstrap, the embedded
services, logs, message schemas, the consumer processes, the service's stop, the
CLI and the demo. Nothing in the domain imports them."""
