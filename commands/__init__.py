"""Commands (what upstream asks the ledger to do) and the handlers that apply
them to Account aggregates in batches, one PostgreSQL transaction per batch."""
