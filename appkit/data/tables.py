"""Read CSV, TSV, JSONL and JSON files into records that remember where they came from.

Every record carries its location: the line where it starts (CSV/TSV/JSONL; a CSV field can
span lines, so this is not the row number) or its index in the top-level JSON list. Shape
detection and conversion (shapes.py, twcs.py) work on these records and never see the format.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appkit.data.report import ReadReport
from appkit.errors import ConfigError, DataError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}
# Keys under which a JSON file that is an object (not a list) may keep its records.
CONTAINER_KEYS = ("data", "dialogues", "records", "items", "rows", "examples")
# Keys that hold a dialogue's turns; a top-level object with one of these is a single dialogue.
TURN_LIST_KEYS = ("utterances", "turns", "messages", "dialogue", "dialog", "conversations", "original")


@dataclass
class Table:
    """The records of one file, each with the line (or JSON index) where it starts."""

    path: Path
    format: str
    columns: list[str]
    records: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    @property
    def line_based(self) -> bool:
        return self.format != "json"

    def source(self, loc: int) -> str:
        """Short location for Conversation.source: ``file:line`` or ``file#index``."""
        return f"{self.path}:{loc}" if self.line_based else f"{self.path}#{loc}"

    def where(self, loc: int) -> str:
        """Location for an error message."""
        if self.line_based:
            return f"{self.path}, line {loc}"
        return f"{self.path}, record {loc} (counting from 0)"


def file_format(path: Path) -> str:
    """The format name for ``path`` by its extension (case-insensitive)."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"{path}: unknown file type {path.suffix or '(no extension)'!r}; a history must be a "
            ".csv, .tsv, .jsonl or .json file. Rename the file if its content is one of these."
        )
    return fmt


def check_file(path: Path) -> None:
    """Raise DataError unless ``path`` is an existing file."""
    if not path.exists():
        raise DataError(f"{path}: no such file. Check the path (relative paths start at {Path.cwd()}).")
    if path.is_dir():
        raise DataError(f"{path}: is a directory; give one .csv, .tsv, .jsonl or .json file.")


def read_text(path: Path, encoding: str) -> str:
    """The decoded text of ``path`` with a leading byte-order mark removed."""
    check_file(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror}).") from None
    try:
        text = raw.decode(encoding)
    except LookupError:
        raise ConfigError(f"encoding {encoding!r} is not known to Python (try utf-8, cp1252 or latin-1).") from None
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise DataError(
            f"{path}, line {line} (byte offset {e.start}, byte {col} of the line): cannot be decoded as "
            f"{encoding} (byte {raw[e.start:e.start + 1]!r}). If the file was saved in another encoding "
            "(Excel often writes cp1252), pass encoding='cp1252' or 'latin-1' (--encoding on the command line)."
        ) from None
    if text.startswith("\ufeff"):  # Excel and Notepad write a BOM that would stick to the first column name
        text = text[1:]
    if not text.strip():
        raise DataError(f"{path}: the file is empty; expected {_expected(file_format(path))}.")
    return text


def _expected(fmt: str) -> str:
    if fmt in ("csv", "tsv"):
        return "a header line naming the columns, then one row per record"
    if fmt == "jsonl":
        return "one JSON object per line"
    return "a JSON list of records or dialogues"


def read_table(path: Path, encoding: str, report: ReadReport) -> Table:
    """Read ``path`` into a Table; malformed rows are counted in ``report``, not raised."""
    check_file(path)  # "no such file" says more than "unknown file type" about a mistyped path
    report.format = fmt = file_format(path)
    text = read_text(path, encoding)
    if fmt in ("csv", "tsv"):
        table = _read_delimited(path, fmt, text, report)
    elif fmt == "jsonl":
        table = _read_jsonl(path, text)
    else:
        table = _read_json(path, text)
    if not table.records:
        raise DataError(f"{path}: contains no records (only a header or empty rows); expected {_expected(fmt)}.")
    report.rows = len(table.records)
    return table


def _read_delimited(path: Path, fmt: str, text: str, report: ReadReport) -> Table:
    delimiter = "\t" if fmt == "tsv" else ","
    first_line = text.split("\n", 1)[0]
    if fmt == "csv" and "," not in first_line and ";" in first_line:
        delimiter = ";"  # spreadsheet exports in many European locales
    try:
        return _parse_delimited(path, fmt, text, delimiter, report, strict=True)
    except _UnclosedQuote as e:
        raise DataError(
            f"{path}, line {e.line}: a quoted field starts here and is never closed, so the rest of the "
            f"file would be read as one text. Add the closing quote (a quote inside a text is written twice: \"\")."
        ) from None
    except csv.Error:
        # Strict parsing also rejects stray quotes ('"x" y'); a lenient pass reads those as most
        # spreadsheets do, so a messy but usable export still loads.
        report.dropped.clear()
        report.examples.clear()
        return _parse_delimited(path, fmt, text, delimiter, report, strict=False)


class _UnclosedQuote(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


def _parse_delimited(path: Path, fmt: str, text: str, delimiter: str, report: ReadReport, strict: bool) -> Table:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=strict)
    start = 1
    try:
        header = next(reader)
        columns = _column_names(header)
        records: list[tuple[int, dict[str, Any]]] = []
        while True:
            start = reader.line_num + 1  # a quoted field may span lines: remember where the row starts
            try:
                row = next(reader)
            except StopIteration:
                break
            if not any(cell.strip() for cell in row):
                continue
            if len(row) > len(columns) and any(cell.strip() for cell in row[len(columns):]):
                report.drop(
                    f"row has more fields than the header ({len(columns)}); unquoted delimiter in a text?",
                    f"{path}:{start}",
                )
                continue
            row = row + [""] * (len(columns) - len(row))
            records.append((start, dict(zip(columns, row))))
    except csv.Error as e:
        if strict and "unexpected end of data" in str(e):
            raise _UnclosedQuote(start) from None
        if strict:
            raise
        raise DataError(
            f"{path}, line {reader.line_num}: not a valid {fmt.upper()} row ({e}). Check the quoting "
            "around that line (a text with a quote character must be quoted and the quote doubled)."
        ) from None
    return Table(path, fmt, columns, records)


def _column_names(header: list[str]) -> list[str]:
    names: list[str] = []
    for i, raw in enumerate(header):
        name = raw.strip() or f"column{i + 1}"
        while name in names:  # keep every column addressable even with a repeated header
            name += "_"
        names.append(name)
    return names


def _json_error(path: Path, line: int, e: json.JSONDecodeError) -> DataError:
    return DataError(f"{path}, line {line}, column {e.colno}: invalid JSON ({e.msg}).")


def _read_jsonl(path: Path, text: str) -> Table:
    records: list[tuple[int, dict[str, Any]]] = []
    # split on "\n" only: str.splitlines would also split on U+2028, which JSON allows inside strings
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise _json_error(path, n, e) from None
        if not isinstance(obj, dict):
            raise DataError(
                f"{path}, line {n}: expected a JSON object per line (like {{\"messages\": [...]}}), "
                f"got {type(obj).__name__}."
            )
        records.append((n, obj))
    return Table(path, "jsonl", _union_keys(records), records)


def _read_json(path: Path, text: str) -> Table:
    try:
        top = json.loads(text)
    except json.JSONDecodeError as e:
        raise _json_error(path, e.lineno, e) from None
    items: Any = top
    if isinstance(top, dict):
        if any(isinstance(top.get(k), list) for k in TURN_LIST_KEYS):
            items = [top]  # one dialogue on its own
        else:
            inner = [k for k in CONTAINER_KEYS if isinstance(top.get(k), list)]
            if not inner:
                raise DataError(
                    f"{path}: the top-level JSON object has keys {', '.join(map(repr, top)) or '(none)'}; "
                    f"expected a list of records, or an object keeping that list under one of "
                    f"{', '.join(CONTAINER_KEYS)}."
                )
            items = top[inner[0]]
    if not isinstance(items, list):
        raise DataError(f"{path}: expected a JSON list of records or dialogues, got {type(items).__name__}.")
    records: list[tuple[int, dict[str, Any]]] = []
    for i, obj in enumerate(items):
        if not isinstance(obj, dict):
            raise DataError(
                f"{path}, record {i} (counting from 0): expected a JSON object, got {type(obj).__name__}."
            )
        records.append((i, obj))
    return Table(path, "json", _union_keys(records), records)


def _union_keys(records: list[tuple[int, dict[str, Any]]]) -> list[str]:
    seen: dict[str, None] = {}
    for _, obj in records:
        for key in obj:
            seen.setdefault(str(key), None)
    return list(seen)


def cell(value: Any) -> str:
    """A record value as text: JSON null is empty, numbers and booleans print as Python does."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return str(value)
