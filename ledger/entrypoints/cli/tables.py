"""Tables that never cut what they show.

rich fits a table that is wider than the terminal by cutting cells
(``2026-000001`` becomes ``202…``), and a cut document number, id or amount
is a wrong one. A :class:`FitTable` lets only free-text columns wrap; when
the other columns cannot be shown in full side by side, it shows each row as
a record instead (one ``column  value`` line per cell), folding a value only
when it alone is wider than the terminal. Nothing is ever cut.

Cells are rich markup: callers pass upstream text through
:func:`ledger.entrypoints.cli.escaping.safe` first, and :func:`cell` makes each a Text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich import box as boxes
from rich.console import Console, ConsoleOptions, Group, JustifyMethod, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

#: Width a wrapping column may be squeezed to before the table gives way to records.
WRAP_MIN = 20
#: Wide enough to measure any table's natural width.
UNBOUNDED = 100_000


def cell(markup: str) -> Text:
    """A markup fragment on its own. ``safe`` doubles a trailing backslash because
    rich halves backslashes before a tag; the empty tag closing the fragment is
    where it is halved back. Emoji codes stay text."""
    return Text.from_markup(f"{markup}[r][/r]", emoji=False)


@dataclass(frozen=True)
class Column:
    header: str
    justify: JustifyMethod = "left"
    #: Free text (descriptions, reasons, details): may wrap onto several lines.
    wrap: bool = False


class FitTable:
    """A table when its unwrappable columns fit the width, else one record per row."""

    def __init__(
        self,
        columns: Sequence[Column],
        rows: Iterable[Sequence[str]],
        *,
        title: str | None = None,
        box: boxes.Box | None = boxes.SIMPLE_HEAVY,
        show_edge: bool = False,
        footer: Iterable[Sequence[str]] = (),
    ) -> None:
        self.columns = list(columns)
        self.rows = [list(row) for row in rows]
        self.footer = [list(row) for row in footer]
        self.title = title
        self.box = box
        self.show_edge = show_edge

    def table(self, wrap_cap: int | None = None) -> Table:
        # No padding at the edges: two more columns for the cells at 80 columns.
        table = Table(box=self.box, show_edge=self.show_edge, pad_edge=False)
        for column in self.columns:
            table.add_column(
                column.header,
                justify=column.justify,
                no_wrap=not column.wrap,
                overflow="fold",
                max_width=wrap_cap if column.wrap else None,
            )
        for row in self.rows:
            table.add_row(*map(cell, row))
        if self.footer:
            table.add_section()
            for row in self.footer:
                table.add_row(*map(cell, row))
        return table

    def fits(self, console: Console, options: ConsoleOptions) -> bool:
        """Whether every unwrappable column fits in full, free text squeezed to WRAP_MIN."""
        probe = self.table(wrap_cap=WRAP_MIN)
        needed = Measurement.get(console, options.update_width(UNBOUNDED), probe).maximum
        return needed <= options.max_width

    def heading(self) -> list[Text]:
        """The title on a line of its own: as a table's title, rich squeezes it to the
        table's width."""
        return [cell(f"[table.title]{self.title}[/table.title]")] if self.title else []

    def records(self) -> Group:
        parts: list[Text | Table] = [*self.heading()]
        if not self.rows and not self.footer:
            parts.append(Text("(none)"))
        for row in [*self.rows, *self.footer]:
            record = Table.grid(padding=(0, 2))
            record.add_column(style="bold", no_wrap=True)
            record.add_column(overflow="fold")
            for column, value in zip(self.columns, row, strict=True):
                if value:
                    record.add_row(column.header, cell(value))
            parts.extend([record, Text("")])
        return Group(*parts)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self.fits(console, options):
            yield from self.heading()
            yield self.table()
        else:
            yield self.records()

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.table(wrap_cap=WRAP_MIN))
