"""Chaos tests: the pipeline under hostile conditions, against the real broker and database.

``test_seeded_faults.py``: a generated stream, real ``ledger serve`` processes,
SIGKILLs, PostgreSQL and broker restarts, and an oracle (``docs/faults.md``).
``test_fuzz.py``: generated bad input interleaved with good input. The long
runs are marked ``chaos`` (``make chaos``); ``make test`` runs a short slice of each.
"""
