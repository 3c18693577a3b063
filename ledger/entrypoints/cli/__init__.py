"""The ``ledger`` command line: one module per concern (reading, writing, refused
input, operating, serving), each registering its commands on the app in
``app.py``; ``main`` turns user errors into one line on stderr."""

from ledger.entrypoints.cli.loading import loading_modules

# typer, rich and the commands' modules, loaded before any command runs, live as
# long as the process: out of the cyclic collector's sight.
with loading_modules():
    from ledger.entrypoints.cli.main import main

__all__ = ["main"]
