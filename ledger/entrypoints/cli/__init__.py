"""The ``ledger`` command line: one module per concern (reading, writing, refused
input, operating, serving), each registering its commands on the app in
``app.py``; ``main`` turns user errors into one line on stderr."""

from ledger.entrypoints.cli.main import main

__all__ = ["main"]
