"""Kafka consumer loops: decode and validate CloudEvents, drop duplicates, map
messages to commands, keep Kafka positions in PostgreSQL with the events they
produced, and dead-letter what cannot be applied."""
