"""Seeded fault suites: a generated stream, real processes, kills and restarts, an oracle."""
