"""The layout's dependency direction is a check that can fail (issue 9): the
import contracts in pyproject.toml hold, and the domain's contract names every
module of the domain, so a new one cannot slip past it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The packages of ``ledger/`` that are not the domain.
NOT_DOMAIN = {"application", "entrypoints"}


def _contracts() -> list[dict[str, list[str] | str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts: list[dict[str, list[str] | str]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def test_the_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports)], check=False, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "2 kept, 0 broken" in result.stdout


def test_the_domain_contract_names_every_module_of_the_domain() -> None:
    ledger = ROOT / "ledger"
    domain = {f"ledger.{p.stem}" for p in ledger.glob("*.py") if p.stem != "__init__"}
    domain |= {
        f"ledger.{p.name}"
        for p in ledger.iterdir()
        if (p / "__init__.py").exists() and p.name not in NOT_DOMAIN
    }
    (forbidden,) = [c for c in _contracts() if c["type"] == "forbidden"]
    assert set(forbidden["source_modules"]) == domain
    assert {"kafka", "psycopg", "typer", "rich"} <= set(forbidden["forbidden_modules"])
