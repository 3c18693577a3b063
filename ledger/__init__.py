"""The billing ledger. Its top level is the domain both billing models share
(money, periods, plans, documents and their numbering, errors, the opening
rules, email counting, the upstream logs read); ``emails/`` and ``contacts/``
are the two models, ``application/`` the eventsourcing Application over them,
and ``entrypoints/`` the edges that start and wire it all (settings, bootstrap,
CLI, demo). The domain is pure: no Kafka, SQL, CLI or HTTP (the import
contracts in pyproject.toml check it)."""
