"""Kafka consumer loops: decode and validate CloudEvents, drop duplicates, map
messages to commands, keep Kafka positions in PostgreSQL with the events they
produced, park facts whose account is not open yet (and re-drive them when it
opens), and dead-letter what cannot be applied."""
