"""Analyze a file of any size: stream it in chunks, write label + probabilities per row, count, chart.

Memory stays constant: rows are read ``chunk_size`` at a time with the csv module, analyzed,
written and forgotten; only the per-label counts are kept. The output (and the chart) are
written to temporary files beside their targets and renamed at the end, so a failure half-way
leaves no half-written file.
"""

from __future__ import annotations

import csv
import io
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appkit.errors import ConfigError, DataError
from appkit.files import atomic_file
from appkit.progress import Progress
from apps.sentiment.data import TEXT_COLUMNS, pick_column
from apps.sentiment.labels import polarity

DELIMITED = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
MAX_CUT_REPORTED = 5  # lines named in the truncation warning; the rest are counted


@dataclass
class BatchSummary:
    """What ``analyze_file`` did."""

    source: Path
    output: Path
    labels: tuple[str, ...]
    rows: int = 0
    empty: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    truncated_lines: list[int] = field(default_factory=list)
    truncated: int = 0
    seconds: float = 0.0
    chart: Path | None = None
    score_sum: float = 0.0
    scored: int = 0

    @property
    def analyzed(self) -> int:
        return self.rows - self.empty

    @property
    def texts_per_second(self) -> float:
        return self.analyzed / self.seconds if self.seconds else 0.0

    @property
    def mean_score(self) -> float | None:
        return self.score_sum / self.scored if self.scored else None

    def as_dict(self) -> dict[str, Any]:
        return {"source": str(self.source), "output": str(self.output), "chart": str(self.chart) if self.chart else None,
                "rows": self.rows, "analyzed": self.analyzed, "empty": self.empty, "truncated": self.truncated,
                "counts": {label: self.counts[label] for label in self.labels}, "mean_score": self.mean_score,
                "seconds": round(self.seconds, 2), "texts_per_second": round(self.texts_per_second, 1)}


@dataclass
class _Rows:
    """An open input: its columns (None for plain text, one text a line) and its records with line numbers."""

    columns: list[str] | None
    records: Iterator[tuple[int, Any]]
    position: Callable[[], int]  # bytes consumed so far, for the progress bar
    # Held here: when the record iterator finishes, dropping the last reference to the text
    # wrapper would close the binary file under the progress bar's feet.
    stream: Any = None


def default_chart_path(output: Path) -> Path:
    """Where the chart goes when not named: beside the output, ``out.csv`` -> ``out.png``."""
    return output.with_suffix(".png")


def analyze_file(analyzer: Any, path: str | Path, output: str | Path, *, text_col: str | None = None,
                 chart: Path | None | bool = True, chunk_size: int = 1000, encoding: str = "utf-8",
                 progress: bool = True, warn: Callable[[str], None] = print) -> BatchSummary:
    """Analyze every row of ``path`` (CSV, TSV or plain text) into ``output`` (CSV or TSV).

    The output keeps the input's columns and adds ``label``, ``prob_<label>`` per label and
    ``score`` (when the labels have a polarity); a name already taken gets a ``predicted_`` prefix.
    ``chart``: True for ``default_chart_path``, a path, or False/None for no chart.

    Raises:
        DataError: missing or empty file, missing text column (the columns found are listed),
            a row the csv module cannot parse (line named).
        ConfigError: the output is the input, or an unknown output type.
    """
    path, output = Path(path).expanduser(), Path(output).expanduser()
    _check_paths(path, output)
    chart_path = default_chart_path(output) if chart is True else (Path(chart) if chart else None)
    summary = BatchSummary(path, output, analyzer.labels, chart=chart_path)
    started = time.perf_counter()
    with path.open("rb") as raw:
        rows = _open_rows(raw, path, encoding)
        column = (rows.columns.index(pick_column(rows.columns, text_col, TEXT_COLUMNS, path, "text", "--text-col"))
                  if rows.columns else None)
        added = _added_columns(rows.columns or ["text"], analyzer)
        header = [*(rows.columns or ["text"]), *added]
        with atomic_file(output, newline="") as out, \
                Progress("analyzing", path.stat().st_size, enabled=progress, fields=("rows",), percent=True) as bar:
            writer = csv.writer(out, delimiter=DELIMITED.get(output.suffix.lower(), ","), lineterminator="\n")
            writer.writerow(header)
            for chunk in _chunks(rows.records, chunk_size):
                texts = [_text(record, column) for _, record in chunk]
                for (line, record), result in zip(chunk, _predict(analyzer, texts)):
                    writer.writerow([*_values(record, rows.columns), *_added_values(result, analyzer)])
                    _count(summary, line, result)
                bar.update(min(rows.position(), bar.total), rows=f"{summary.rows:,}")
            if summary.rows == 0:  # inside the with: nothing is renamed into place
                raise DataError(f"{path}: has a header but no rows to analyze.")
    summary.seconds = time.perf_counter() - started
    if summary.truncated:
        lines = ", ".join(str(n) for n in summary.truncated_lines)
        more = f" and {summary.truncated - len(summary.truncated_lines)} more" if summary.truncated > MAX_CUT_REPORTED else ""
        warn(f"warning: {path}: {summary.truncated} texts are longer than the model's context of "
             f"{analyzer.max_length} tokens and were cut to their start and end (lines {lines}{more}).")
    if chart_path is not None:
        save_chart(summary, chart_path)
    return summary


def _check_paths(path: Path, output: Path) -> None:
    if not path.is_file():
        raise DataError(f"{path}: no such file." if not path.exists() else f"{path}: is not a file.")
    if output.exists() and output.resolve() == path.resolve():
        raise ConfigError(f"-o {output}: is the input file; choose another output path.")
    if output.suffix.lower() not in (".csv", ".tsv", ".tab"):
        raise ConfigError(f"-o {output}: the output must be a .csv or .tsv file.")


def _open_rows(raw: Any, path: Path, encoding: str) -> _Rows:
    """Columns and a record iterator over the open binary file (text files: one text a line)."""
    text = io.TextIOWrapper(raw, encoding="utf-8-sig" if encoding.lower().replace("-", "") == "utf8" else encoding,
                            newline="")
    suffix = path.suffix.lower()
    if suffix not in DELIMITED and suffix not in (".txt", ""):
        raise DataError(f"{path}: unknown file type {suffix!r}; analyze reads .csv, .tsv or .txt (one text a line).")
    try:
        first = text.readline()
    except UnicodeDecodeError as e:
        raise DataError(f"{path}, line 1: not {encoding} text ({e.reason}); pass --encoding.") from None
    if not first.strip():
        raise DataError(f"{path}: the file is empty" + ("." if not first else " (its first line is blank)."))

    def position() -> int:
        return raw.tell()

    if suffix not in DELIMITED:
        return _Rows(None, _lines(first, text, path, encoding), position, text)
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 27))  # one huge review is a row, not an error
    header = next(csv.reader([first], delimiter=DELIMITED[suffix]))
    columns = [c.strip() for c in header]
    reader = csv.reader(text, delimiter=DELIMITED[suffix])
    return _Rows(columns, _records(reader, path, encoding), position, text)


def _lines(first: str, text: Any, path: Path, encoding: str) -> Iterator[tuple[int, Any]]:
    yield 1, first.rstrip("\r\n")
    line = 1
    try:
        for line, value in enumerate(text, start=2):
            yield line, value.rstrip("\r\n")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}, after line {line}: not {encoding} text ({e.reason}); pass --encoding.") from None


def _records(reader: Any, path: Path, encoding: str) -> Iterator[tuple[int, Any]]:
    last = 1  # the header's line
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise DataError(f"{path}, line {last + 1}: cannot be read as {path.suffix.lstrip('.').upper()} ({e}).") from None
        except UnicodeDecodeError as e:
            raise DataError(f"{path}, after line {last}: not {encoding} text ({e.reason}); pass --encoding.") from None
        start, last = last + 1, reader.line_num + 1  # +1: line_num counts from the line after the header
        if row:
            yield start, row


def _chunks(records: Iterator[tuple[int, Any]], size: int) -> Iterator[list[tuple[int, Any]]]:
    chunk: list[tuple[int, Any]] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _text(record: Any, column: int | None) -> str:
    if column is None:
        return str(record).strip()
    return (record[column] if column < len(record) else "").strip()


def _values(record: Any, columns: list[str] | None) -> list[str]:
    if columns is None:
        return [record]
    return [*record[: len(columns)], *[""] * (len(columns) - len(record))]  # short rows padded, extra cells dropped


def _predict(analyzer: Any, texts: list[str]) -> list[Any]:
    """Results for ``texts`` (None for an empty one, which gets an empty label)."""
    idx = [i for i, t in enumerate(texts) if t]
    results: list[Any] = [None] * len(texts)
    for i, r in zip(idx, analyzer.analyze([texts[i] for i in idx], warn=False)):
        results[i] = r
    return results


def _added_columns(columns: list[str], analyzer: Any) -> list[str]:
    names = ["label", *(f"prob_{label}" for label in analyzer.labels), *(["score"] if analyzer.polarity else [])]
    if set(names) & set(columns):
        names = [f"predicted_{n}" for n in names]
    return names


def _added_values(result: Any, analyzer: Any) -> list[str]:
    if result is None:
        return ["", *[""] * len(analyzer.labels), *([""] if analyzer.polarity else [])]
    probs = [f"{result.probabilities[label]:.4f}" for label in analyzer.labels]
    return [result.label, *probs, *([f"{round(result.score, 4) + 0.0:.4f}"] if analyzer.polarity else [])]


def _count(summary: BatchSummary, line: int, result: Any) -> None:
    summary.rows += 1
    if result is None:
        summary.empty += 1
        return
    summary.counts[result.label] += 1
    if result.score is not None:
        summary.score_sum += result.score
        summary.scored += 1
    if result.truncated:
        summary.truncated += 1
        if len(summary.truncated_lines) < MAX_CUT_REPORTED:
            summary.truncated_lines.append(line)


def save_chart(summary: BatchSummary, path: Path) -> Path:
    """A bar chart of how many texts got each label (with shares), written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt
    from matplotlib.ticker import StrMethodFormatter

    labels = list(summary.labels)
    counts = [summary.counts[label] for label in labels]
    total = sum(counts) or 1
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(labels) + 2), 3.6), dpi=110)
    bars = ax.bar(labels, counts, color=_colours(labels))
    for bar, n in zip(bars, counts):
        ax.annotate(f"{n:,}\n{100 * n / total:.1f}%", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("texts")
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.set_ylim(0, max(counts + [1]) * 1.25)
    ax.set_title(f"sentiment of {summary.analyzed:,} texts in {summary.source.name}", fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    try:
        with atomic_file(path, "wb") as f:
            fig.savefig(f, format="png")
    finally:
        plt.close(fig)
    return path


def _colours(labels: list[str]) -> list[Any]:
    """Red for negative through grey to green for positive where the labels have a polarity
    (negative/positive, bad/good, 1-5 stars); matplotlib's palette for labels with no order."""
    from matplotlib.colors import LinearSegmentedColormap

    values = polarity(labels)
    if not values:
        return [f"C{i}" for i in range(len(labels))]
    scale = LinearSegmentedColormap.from_list("polarity", ["#d62728", "#7f7f7f", "#2ca02c"])
    return [scale((values[label] + 1) / 2) for label in labels]
