"""Loading modules without the cyclic collector (``ledger`` itself, and what a
command imports when it runs).

Modules live as long as the process: the collector would scan the hundreds of
thousands of objects typer, rich, psycopg, pydantic and eventsourcing create while
they load, and all of them again at exit, to find nothing (bench/cli_startup.py).
Standard library only: it runs before anything else of the CLI is imported.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def loading_modules() -> Iterator[None]:
    """Import without the cyclic collector, then keep what was loaded out of its sight:
    ``gc.freeze`` moves it to the permanent generation; what the command allocates
    afterwards is collected as usual."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
