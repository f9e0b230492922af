"""The writers of ``sfjwt query`` (table, csv, json, jsonl; parquet via :mod:`sfjwt_ext.data.dataframe`).

Salesforce records arrive nested (``{"attributes": ..., "Account": {"Name": ...}}``); the
command prints flat rows with ``Account.Name`` columns, in the order of the SOQL field list,
without ``attributes``: the columns, their order and spelling, the flattening and the
grouped-parent quirk are :mod:`sfjwt_ext.cli.rows`' (``RowPlan``; ``flatten``,
``select_columns`` and ``row_values`` are re-exported here for ``demo``). Writers take rows
one at a time, so a result of any size streams through without being held in memory (the table writer, which must know column widths,
keeps at most :data:`TABLE_MAX_ROWS`).
"""
from __future__ import annotations

import csv
import json
from typing import IO, Any, Iterable, List, Sequence

from ..data.records import flatten
from .rows import row_values, select_columns

__all__ = [
    "TABLE_MAX_ROWS", "flatten", "select_columns", "row_values", "make_writer", "format_table",
]

#: The table format aligns columns, so it buffers; past this many rows it stops and says so.
TABLE_MAX_ROWS = 1000


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


class Writer:
    def __init__(self, out: IO[str], columns: Sequence[str]) -> None:
        self.out = out
        self.columns = list(columns)
        self.rows = 0
        self.truncated = False

    @property
    def full(self) -> bool:
        """True when the writer takes no more rows (the table's cap): stop fetching."""
        return False

    def write(self, values: Sequence[Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        self.out.flush()


class CsvWriter(Writer):
    def __init__(self, out: IO[str], columns: Sequence[str]) -> None:
        super().__init__(out, columns)
        self._csv = csv.writer(out, lineterminator="\n")
        self._csv.writerow(self.columns)

    def write(self, values: Sequence[Any]) -> None:
        self._csv.writerow([_cell_text(v) for v in values])
        self.rows += 1


class JsonWriter(Writer):
    """One JSON array, streamed: ``[`` first, ``,`` between records, ``]`` at close."""

    def __init__(self, out: IO[str], columns: Sequence[str]) -> None:
        super().__init__(out, columns)
        out.write("[")

    def write(self, values: Sequence[Any]) -> None:
        self.out.write(("\n" if self.rows == 0 else ",\n") + json.dumps(dict(zip(self.columns, values)), ensure_ascii=False))
        self.rows += 1

    def close(self) -> None:
        self.out.write("\n]\n" if self.rows else "]\n")
        super().close()


class JsonlWriter(Writer):
    def write(self, values: Sequence[Any]) -> None:
        self.out.write(json.dumps(dict(zip(self.columns, values)), ensure_ascii=False) + "\n")
        self.rows += 1


class TableWriter(Writer):
    def __init__(self, out: IO[str], columns: Sequence[str], max_rows: int = TABLE_MAX_ROWS) -> None:
        super().__init__(out, columns)
        self.max_rows = max_rows
        self._buffer: List[List[str]] = []

    @property
    def full(self) -> bool:
        return len(self._buffer) >= self.max_rows

    def write(self, values: Sequence[Any]) -> None:
        if self.full:
            self.truncated = True
            return
        self._buffer.append([_cell_text(v) for v in values])
        self.rows += 1

    def close(self) -> None:
        self.out.write(format_table(self.columns, self._buffer))
        super().close()


def format_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Aligned plain-text columns with a dashed rule under the header."""
    text_rows = [[_cell_text(v) if not isinstance(v, str) else v for v in row] for row in rows]
    widths = [len(c) for c in columns]
    for row in text_rows:
        for i, cell in enumerate(row):
            widths[i] = min(max(widths[i], len(cell)), 60)

    def line(cells: Sequence[str]) -> str:
        shown = [(c if len(c) <= 60 else c[:59] + "…").ljust(w) for c, w in zip(cells, widths)]
        return "  ".join(shown).rstrip() + "\n"

    out = [line(list(columns)), line(["-" * w for w in widths])]
    out.extend(line(row) for row in text_rows)
    return "".join(out)


_WRITERS = {"csv": CsvWriter, "json": JsonWriter, "jsonl": JsonlWriter, "table": TableWriter}


def make_writer(fmt: str, out: IO[str], columns: Sequence[str]) -> Writer:
    return _WRITERS[fmt](out, columns)
