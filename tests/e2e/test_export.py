"""``ledger export`` and ``ledger audit check-export``: the books taken away in each
format and checked from the files alone; a changed amount or event is found even
when the manifest is rewritten to match.

The books (tests/e2e/conftest.py ``audited``): acme and globex, 3 emails each in
November, invoices 2026-000001 (acme) and 2026-000002 (globex) issued on 1
December; here acme also pays 5.00 of its invoice.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.e2e.conftest import AuditedBooks
from tests.support import ledger_command, utc


def export(books: AuditedBooks, directory: Path, *args: str) -> dict[str, object]:
    result = ledger_command("export", str(directory), *args, env=books.env)
    assert result.returncode == 0, result.stderr
    manifest: dict[str, object] = json.loads((directory / "manifest.json").read_text())
    return manifest


@pytest.fixture(scope="module")
def books(audited_once: AuditedBooks) -> AuditedBooks:
    """The audited books with acme's payment: built once, only read by the tests."""
    pay(audited_once)
    return audited_once


def pay(books: AuditedBooks) -> None:
    up = books.upstreams
    up.publish([up.payment("acme", "5.00", utc(2026, 12, 1, 8), reference="2026-000001")])
    consumer = books.services.consumer()
    consumer.drain(timeout=60)
    consumer.close()


def rewrite_manifest(directory: Path, name: str) -> None:
    """What a forger would do: the manifest's hash made to match the changed file."""
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["files"][name]["sha256"] = hashlib.sha256((directory / name).read_bytes()).hexdigest()
    (directory / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_an_export_in_each_format_checks_out_from_its_files_alone(
    books: AuditedBooks, tmp_path: Path, fmt: str
) -> None:
    events = len(books.ids())
    head = books.audit("head")[1]
    manifest = export(books, tmp_path / "books", "--format", fmt)
    rows = {name: figures["rows"] for name, figures in manifest["files"].items()}  # type: ignore[attr-defined]
    assert rows == {
        f"events.{fmt}": events,
        f"documents.{fmt}": 2,
        f"document_lines.{fmt}": rows[f"document_lines.{fmt}"],
        f"payments.{fmt}": 1,
        f"allocations.{fmt}": 1,
        # 2 accounts opened, 6 emails, 1 payment: one key each.
        f"dedupe_keys.{fmt}": 9,
    }
    assert manifest["chain_head"] == head
    assert manifest["scope"] == {
        "account_id": None,
        "recorded_from": None,
        "recorded_to": None,
        "complete": True,
    }
    code, output = books.audit("check-export", str(tmp_path / "books"))
    assert (code, output.splitlines()) == (
        0,
        [
            f"6 files ({fmt}): rows and SHA-256 as the manifest lists",
            "2 documents: totals recomputed from their lines",
            f"{events} events: chain checked, link after link to the manifest's head",
            "sound",
        ],
    )


def test_a_changed_amount_is_found_with_or_without_its_manifest_rewritten(
    books: AuditedBooks, tmp_path: Path
) -> None:
    folder = tmp_path / "books"
    export(books, folder)
    documents = folder / "documents.jsonl"
    rows = [json.loads(line) for line in documents.read_text().splitlines()]
    first = rows[0]
    total = first["total"]
    first["total"] = str(float(total) + 1)  # e.g. "10.00" -> "11.0"
    documents.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, output = books.audit("check-export", str(folder))
    assert code == 1
    assert "documents.jsonl: SHA-256 differs from the manifest's" in output.splitlines()
    rewrite_manifest(folder, "documents.jsonl")
    code, output = books.audit("check-export", str(folder))
    assert code == 1
    assert (
        f"document {first['number']}: total {first['total']} stated, {total} recomputed"
        " from its lines" in output.splitlines()
    )


def test_a_changed_event_breaks_its_link(books: AuditedBooks, tmp_path: Path) -> None:
    folder = tmp_path / "books"
    export(books, folder, "--format", "csv")
    path = folder / "events.csv"
    text = path.read_text()
    # acme's 3 November emails (a usage entry: month, late, platform, ...) made 2.
    changed = text.replace('[""2026-11"",false,3,', '[""2026-11"",false,2,', 1)
    assert changed != text
    path.write_text(changed)
    rewrite_manifest(folder, "events.csv")
    code, output = books.audit("check-export", str(folder))
    assert code == 1
    assert any(line.endswith(": its fields do not give its link") for line in output.splitlines())


def test_one_account_s_export_checks_each_link_alone(books: AuditedBooks, tmp_path: Path) -> None:
    manifest = export(books, tmp_path / "acme", "--account", "acme", "--format", "parquet")
    assert manifest["scope"]["complete"] is False  # type: ignore[index]
    assert manifest["files"]["documents.parquet"]["rows"] == 1  # type: ignore[index]
    # acme's opening, its 3 emails and its payment: one key each.
    assert manifest["files"]["dedupe_keys.parquet"]["rows"] == 5  # type: ignore[index]
    code, output = books.audit("check-export", str(tmp_path / "acme"))
    assert code == 0
    assert "chain checked, each link alone" in output


def test_an_export_into_a_used_directory_is_refused(books: AuditedBooks, tmp_path: Path) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    result = ledger_command("export", str(tmp_path / "used"), env=books.env)
    assert (result.returncode, result.stderr.strip()) == (
        1,
        f"error: {tmp_path / 'used'} is not an empty directory",
    )
