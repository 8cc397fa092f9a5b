"""A folder of CSV files, one `<object>.csv` per object: rows in, whole files out."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from connectors.spreadsheet.files import replacing
from connectors.spreadsheet.table import Row, Table

# Undecodable bytes survive decoding as lone surrogates (errors="surrogateescape"), so a bad
# row is found, reported and skipped while the rest of the file still reads, and a rewrite
# puts those bytes back exactly as they were.
_UNDECODABLE = re.compile("[\udc80-\udcff]")
_BOM = codecs.BOM_UTF8


def text(value: Any) -> str:
    """A CSV cell is already text."""
    return value if isinstance(value, str) else ""


def cell(value: Any) -> str:
    """The CSV text for a written value: lists and objects as JSON, booleans as true/false."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return float_text(value)
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def float_text(value: float) -> str:
    """A float as a person would write it: 15 significant digits, no exponent, no '.0'."""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    shown = format(value, ".15g")
    if "e" in shown:
        shown = format(Decimal(shown), "f")
    return shown


class CsvFolder:
    """Reads and atomically rewrites `<object>.csv` files in one folder."""

    def __init__(self, folder: Path, *, delimiter: str, encoding: str) -> None:
        self.folder = folder
        self.delimiter = delimiter
        self.encoding = encoding
        # A UTF-8 byte order mark (Excel writes one) is not part of the first column's name.
        self._read_encoding = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding

    text = staticmethod(text)
    cell = staticmethod(cell)

    def path(self, object: str) -> Path:
        """The file holding `object`."""
        return self.folder / f"{object}.csv"

    def label(self, object: str) -> str:
        """How messages name the file."""
        return f"{object}.csv"

    def problem(self) -> str | None:
        """Why the folder cannot be used, or None."""
        if not self.folder.exists():
            return f"folder {self.folder} does not exist"
        if not self.folder.is_dir():
            return f"{self.folder} is not a folder (nor an .xlsx workbook)"
        return None

    def objects(self) -> list[str]:
        """The objects that have a file."""
        return sorted(p.stem for p in self.folder.glob("*.csv"))

    def rows(self, object: str) -> Iterator[Row]:
        """The header row then every data row; nothing when the file does not exist."""
        path = self.path(object)
        if not path.exists():
            return
        with open(path, "rb") as raw:
            source = io.TextIOWrapper(raw, encoding=self._read_encoding,
                                      errors="surrogateescape", newline="")
            reader = csv.reader(source, delimiter=self.delimiter)
            bad = f"has bytes that are not valid {self.encoding} (setting 'encoding')"
            start = 1
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    yield Row(start, [], f"cannot be read as CSV ({exc}); the rest of the "
                                         "file was not read")
                    return
                line, start = start, reader.line_num + 1
                if _UNDECODABLE.search("".join(cells)):
                    yield Row(line, [_printable(c) for c in cells], bad)
                else:
                    yield Row(line, cells)

    def load(self, object: str) -> Table:
        """The whole file for a write (an empty table when it does not exist yet)."""
        path = self.path(object)
        label = self.label(object)
        if not path.exists():
            return Table(label, [], [], {"bom": False, "newline": "\r\n"})
        data = path.read_bytes()
        bom = data.startswith(_BOM) and codecs.lookup(self.encoding).name == "utf-8"
        first_line = data.split(b"\n", 1)[0]
        newline = "\n" if b"\n" in data and not first_line.endswith(b"\r") else "\r\n"
        content = data.decode(self._read_encoding, errors="surrogateescape")
        parsed = list(csv.reader(io.StringIO(content, newline=""), delimiter=self.delimiter))
        header = [c.strip() for c in parsed[0]] if parsed else []
        return Table(label, header, parsed[1:], {"bom": bom, "newline": newline})

    def save(self, object: str, table: Table) -> None:
        """Replace the file atomically with the table's content."""
        with replacing(self.path(object)) as out:
            if table.extra.get("bom"):
                out.write(_BOM)
            wrapper = io.TextIOWrapper(out, encoding=self.encoding, errors="surrogateescape",
                                       newline="")
            _write_rows(wrapper, table.header, table.rows, self.delimiter,
                        table.extra.get("newline", "\r\n"))
            wrapper.flush()
            wrapper.detach()  # leave the binary file open for replacing() to fsync


def _write_rows(out: io.TextIOWrapper, header: list[str], rows: Sequence[list[Any]],
                delimiter: str, newline: str) -> None:
    writer = csv.writer(out, delimiter=delimiter, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(rows)


def _printable(value: str) -> str:
    """Undecodable bytes as \\xNN escapes: the dead letter shows them and stays valid JSON."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
