"""The export's tables as files: JSON lines, CSV or Parquet, written and read back.

One shape for the three formats: each table is a fixed list of columns, an
integer column holds integers and every other column text or null. Money,
rates and times are text (``"12.34"``, RFC 3339): exact in every format and
read the same by any tool, which a float column would not be. In CSV an empty
field is null (no exported text value is empty). Parquet goes through pyarrow.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from projections.export_tables import ExportTable as Table

Format = Literal["jsonl", "csv", "parquet"]
FORMATS: tuple[Format, ...] = ("jsonl", "csv", "parquet")
Value = int | str | None


class Writer:
    """Rows of one table into ``DIR/<name>.<format>``; ``close`` gives its row count."""

    def __init__(self, directory: Path, table: Table, fmt: Format) -> None:
        self.table, self.fmt, self.rows = table, fmt, 0
        self.path = directory / f"{table.name}.{fmt}"
        self._pending: list[Sequence[Value]] = []
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            self._schema = pa.schema(
                [(c, pa.int64() if c in table.integers else pa.string()) for c in table.columns]
            )
            self._parquet = pq.ParquetWriter(self.path, self._schema)
        else:
            self._file = self.path.open("w", encoding="utf-8", newline="")
            if fmt == "csv":
                self._csv = csv.writer(self._file)
                self._csv.writerow(table.columns)

    def write(self, row: Sequence[Value]) -> None:
        self.rows += 1
        if self.fmt == "jsonl":
            self._file.write(json.dumps(dict(zip(self.table.columns, row, strict=True))) + "\n")
        elif self.fmt == "csv":
            self._csv.writerow(["" if v is None else v for v in row])
        else:
            self._pending.append(row)
            if len(self._pending) >= 10_000:
                self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self._pending:
            columns = list(zip(*self._pending, strict=True))
            self._parquet.write_batch(pa.record_batch(columns, schema=self._schema))
            self._pending = []

    def close(self) -> int:
        if self.fmt == "parquet":
            self._flush()
            self._parquet.close()
        else:
            self._file.close()
        return self.rows


def read_rows(directory: Path, table: Table, fmt: Format) -> Iterator[dict[str, Value]]:
    """A table's rows as written (integers as int, text as str, null as None)."""
    path = directory / f"{table.name}.{fmt}"
    if fmt == "jsonl":
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                yield json.loads(line)
    elif fmt == "csv":
        with path.open(encoding="utf-8", newline="") as text:
            for record in csv.DictReader(text):
                yield {c: _csv_value(c, record[c], table) for c in table.columns}
    else:
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches():
            yield from batch.to_pylist()


def _csv_value(column: str, text: str, table: Table) -> Value:
    if text == "":
        return None
    return int(text) if column in table.integers else text


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        while chunk := data.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def read_manifest(directory: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((directory / "manifest.json").read_text())
    return loaded
