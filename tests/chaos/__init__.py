"""Chaos tests: the pipeline under hostile conditions, against the real broker and database.

``test_fuzz.py``: generated bad input interleaved with good input. The long
runs are marked ``chaos`` (``make chaos``); ``make test`` runs a short one.
"""
