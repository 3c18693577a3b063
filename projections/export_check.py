"""``ledger audit check-export DIR``: an export checked from its files alone.

No database: what an auditor's own tools would do, done once by the ledger so
that a change to any file is found. The manifest's row counts and SHA-256 are
recomputed; every document's subtotal, tax and total are recomputed from its
lines with the ledger's one rounding rule (half-up to the currency's minor
unit, docs/rounding.md); no document is paid beyond its total by the exported
allocations; and every event's link in the hash chain is recomputed from the
exported fields. A complete export is also checked link after link, from the
first event to the head the manifest names.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from commands.chain import GENESIS, ChainedEvent, Head, link
from ledger.money import Money
from projections.export_files import FORMATS, Format, read_manifest, read_rows, sha256_of
from projections.export_tables import ALLOCATIONS, DOCUMENTS, EVENTS, LINES, TABLES


@dataclass(slots=True)
class ExportCheck:
    format: Format
    files: int = 0
    documents: int = 0
    events: int = 0
    complete: bool = False
    head: str | None = None
    findings: list[str] = field(default_factory=list)

    @property
    def sound(self) -> bool:
        return not self.findings


class ExportUnreadable(Exception):
    """Not an export: no manifest, or one that names no known format."""


def check_export(directory: Path) -> ExportCheck:
    try:
        manifest = read_manifest(directory)
    except (OSError, ValueError) as exc:
        raise ExportUnreadable(f"{directory}: no readable manifest.json ({exc})") from None
    fmt = manifest.get("format")
    if fmt not in FORMATS:
        raise ExportUnreadable(f"{directory}: the manifest names no known format ({fmt!r})")
    check = ExportCheck(fmt, complete=bool(manifest["scope"]["complete"]))
    check.head = manifest.get("chain_head")
    _check_files(directory, manifest, check)
    if check.findings:  # the files are not what was exported: read no further
        return check
    _check_documents(directory, check)
    _check_chain(directory, check)
    return check


def _check_files(directory: Path, manifest: dict[str, Any], check: ExportCheck) -> None:
    listed: dict[str, Any] = manifest["files"]
    expected = {f"{t.name}.{check.format}" for t in TABLES}
    for name in sorted(expected - listed.keys()):
        check.findings.append(f"manifest: {name} is not listed")
    present = {p.name for p in directory.iterdir()} - {"manifest.json"}
    for name in sorted(present - listed.keys()):
        check.findings.append(f"manifest: {name} is in the directory but not in the manifest")
    for table in TABLES:
        name = f"{table.name}.{check.format}"
        if name not in listed:
            continue
        path = directory / name
        if not path.exists():
            check.findings.append(f"{name}: missing")
            continue
        check.files += 1
        if sha256_of(path) != listed[name]["sha256"]:
            check.findings.append(f"{name}: SHA-256 differs from the manifest's")
        rows = sum(1 for _ in read_rows(directory, table, check.format))
        if rows != listed[name]["rows"]:
            check.findings.append(
                f"{name}: {rows:,} rows, the manifest says {listed[name]['rows']:,}"
            )


def _check_documents(directory: Path, check: ExportCheck) -> None:
    lines: dict[str, list[Decimal]] = defaultdict(list)
    for line in read_rows(directory, LINES, check.format):
        lines[str(line["number"])].append(Decimal(str(line["amount"])))
    paid: dict[str, Decimal] = defaultdict(Decimal)
    for allocation in read_rows(directory, ALLOCATIONS, check.format):
        paid[str(allocation["reference"])] += Decimal(str(allocation["amount"]))
    for document in read_rows(directory, DOCUMENTS, check.format):
        check.documents += 1
        number, currency = str(document["number"]), str(document["currency"])
        subtotal = Money(sum(lines.pop(number, []), Decimal(0)), currency).rounded()
        tax = (subtotal * Decimal(str(document["tax_rate"]))).rounded()
        stated = {k: Decimal(str(document[k])) for k in ("subtotal", "tax", "total")}
        for what, recomputed in (
            ("subtotal", subtotal),
            ("tax", tax),
            ("total", subtotal + tax),
        ):
            if recomputed.amount != stated[what]:
                check.findings.append(
                    f"document {number}: {what} {stated[what]} stated,"
                    f" {recomputed.amount} recomputed from its lines"
                )
        if paid.get(number, Decimal(0)) > stated["total"]:
            check.findings.append(
                f"document {number}: {paid[number]} allocated to it, beyond its total"
                f" {stated['total']}"
            )
    for number in sorted(lines):
        check.findings.append(f"document_lines: lines of {number}, a document not exported")


def _check_chain(directory: Path, check: ExportCheck) -> None:
    last = GENESIS
    for event in read_rows(directory, EVENTS, check.format):
        check.events += 1
        nid = int(str(event["notification_id"]))
        if event["link"] is None:
            check.findings.append(f"event {nid}: no link in the hash chain")
            continue
        previous = bytes.fromhex(str(event["previous_link"]))
        chained = ChainedEvent(
            nid,
            UUID(str(event["originator_id"])),
            int(str(event["originator_version"])),
            str(event["topic"]),
            str(event["state"]).encode("utf-8"),
        )
        if link(previous, chained).hex() != event["link"]:
            check.findings.append(f"event {nid}: its fields do not give its link")
        if check.complete and previous != last:
            check.findings.append(f"event {nid}: does not follow the event before it")
        last = bytes.fromhex(str(event["link"]))
        if len(check.findings) > 50:
            check.findings.append("... (stopped after 50 findings)")
            return
    if check.complete and check.head is not None:
        head = Head.parse(check.head)
        if last != head.hash:
            check.findings.append(
                f"chain: the last exported link is not the manifest's head {head}"
            )
