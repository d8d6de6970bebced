"""``read_corpus``: raw text for pretraining and for the writer -> list[Document].

A corpus is any mix of files and folders (searched recursively, in name order):

- ``.md`` / ``.markdown``: one document per file; YAML front matter (between ``---`` lines at the
  top) is parsed into ``Document.meta`` and stripped from the text;
- ``.txt``: one document per file;
- ``.csv`` / ``.tsv`` / ``.jsonl`` / ``.json``: one document per record, the text taken from
  ``text_col`` (or the first of ``TEXT_COLUMNS`` present); the other columns become ``meta``.

Inside a folder, files of other types are skipped and counted; named explicitly, they are an
error. Every document's ``source`` points back at its file (and line or record).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from appkit.data.report import ReadReport
from appkit.data.tables import FORMATS, cell, read_table, read_text
from appkit.data.types import Document
from appkit.errors import DataError

TEXT_SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".txt": "text"}
TEXT_COLUMNS = ("text", "content", "body", "article", "post", "document", "sentence", "review", "description")
KNOWN_SUFFIXES = ", ".join(sorted({*TEXT_SUFFIXES, *FORMATS}))


@dataclass
class CorpusReport:
    """What ``read_corpus`` read, and what it skipped and why."""

    paths: list[str] = field(default_factory=list)  # the files and folders asked for, as given
    files: Counter[str] = field(default_factory=Counter)  # format -> files read
    documents: int = 0
    characters: int = 0
    skipped_files: list[str] = field(default_factory=list)
    empty_documents: int = 0
    warnings: list[str] = field(default_factory=list)  # e.g. front matter that could not be read

    def summary(self) -> str:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.files.items()))
        parts = [f"corpus: {self.documents:,} documents ({self.characters:,} characters) from {kinds or 'no files'}"]
        if self.empty_documents:
            parts.append(f"{self.empty_documents} empty documents left out")
        if self.skipped_files:
            shown = ", ".join(self.skipped_files[:3]) + (" ..." if len(self.skipped_files) > 3 else "")
            parts.append(f"{len(self.skipped_files)} files of other types skipped ({shown})")
        return "; ".join(parts) + "".join(f"\nwarning: {w}" for w in self.warnings)


def read_corpus(
    paths: str | PathLike[str] | Sequence[str | PathLike[str]],
    *,
    text_col: str | None = None,
    encoding: str = "utf-8",
) -> tuple[list[Document], CorpusReport]:
    """Read every document under ``paths`` (files or folders).

    Raises:
        DataError: a path is missing, a named file has an unknown type, a table lacks the text
            column, front matter is not valid YAML, or no document has any text.
    """
    items = [paths] if isinstance(paths, (str, PathLike)) else list(paths)
    if not items:
        raise DataError("no corpus given: pass one or more files or folders of text.")
    report = CorpusReport(paths=[str(item) for item in items])
    documents: list[Document] = []
    for item in items:
        for path in _files(Path(item), report):
            for doc in _read_file(path, text_col, encoding, report):
                if doc.text.strip():
                    documents.append(doc)
                else:
                    report.empty_documents += 1
    if not documents:
        where = ", ".join(str(p) for p in items)
        raise DataError(
            f"{where}: no text found. A corpus is .md/.markdown/.txt files (one document each) or "
            f"tables (.csv/.tsv/.jsonl/.json) with a text column; files of other types are skipped."
        )
    report.documents = len(documents)
    report.characters = sum(len(d.text) for d in documents)
    return documents, report


def _files(path: Path, report: CorpusReport) -> Iterable[Path]:
    if not path.exists():
        raise DataError(f"{path}: no such file or folder. Check the path (relative paths start at {Path.cwd()}).")
    if path.is_file():
        if _kind(path) is None:
            raise DataError(f"{path}: unknown file type {path.suffix or '(no extension)'!r}; expected one of {KNOWN_SUFFIXES}.")
        return [path]
    found = []
    for child in sorted(p for p in path.rglob("*") if p.is_file()):
        if any(part.startswith(".") for part in child.relative_to(path).parts):
            continue  # .git, .DS_Store and other hidden files are never part of a corpus
        if _kind(child) is None:
            report.skipped_files.append(str(child.relative_to(path)))
        else:
            found.append(child)
    if not found:
        raise DataError(f"{path}: the folder holds no {KNOWN_SUFFIXES} files, so there is nothing to learn from.")
    return found


def _kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    return TEXT_SUFFIXES.get(suffix) or FORMATS.get(suffix)


def _read_file(path: Path, text_col: str | None, encoding: str, report: CorpusReport) -> list[Document]:
    kind = _kind(path)
    assert kind is not None
    report.files[kind] += 1
    if kind in ("markdown", "text"):
        try:
            text = read_text(path, encoding)
        except DataError as e:
            if "the file is empty" not in str(e):
                raise
            return [Document(path.stem, "", str(path))]
        meta: dict[str, Any] = {}
        if kind == "markdown":
            try:
                meta, text = split_front_matter(text, path)
            except DataError as e:
                # One post with broken front matter must not stop a corpus of hundreds: its text
                # is still the brand's voice. Say where, and keep it without metadata.
                report.warnings.append(f"{e} Read without its front matter.")
                text = _after_front_matter(text)
        return [Document(path.stem, text.strip(), str(path), meta)]
    table = read_table(path, encoding, ReadReport(path))
    column = _text_column(table.columns, text_col, path)
    return [
        Document(f"{path.stem}:{loc}", cell(record.get(column)).strip(), table.source(loc),
                 {k: v for k, v in record.items() if k != column})
        for loc, record in table.records
    ]


def _text_column(columns: list[str], text_col: str | None, path: Path) -> str:
    if text_col is not None:
        if text_col not in columns:
            raise DataError(f"{path}: no column {text_col!r}; the columns are {', '.join(columns)}.")
        return text_col
    lowered = {c.lower(): c for c in columns}
    for name in TEXT_COLUMNS:
        if name in lowered:
            return lowered[name]
    raise DataError(
        f"{path}: no text column found among {', '.join(columns)}; expected one of {', '.join(TEXT_COLUMNS)}, "
        "or name it with --text-col."
    )


def split_front_matter(text: str, path: Path | str = "<text>") -> tuple[dict[str, Any], str]:
    """(front matter as a dict, the text after it) of a Markdown document."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return {}, text
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            break
    else:
        raise DataError(f"{path}, line 1: front matter starts with '---' but is never closed by another '---' line.")
    import yaml

    header = "\n".join(lines[1:end])
    try:
        try:
            meta = yaml.safe_load(header) or {}
        except yaml.YAMLError:
            # YAML forbids tabs where blogs' front matter often has them (trailing, or as
            # indentation); Jekyll's parser reads those, so read them the same way.
            meta = yaml.safe_load(header.replace("\t", "  ")) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f", line {mark.line + 2}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise DataError(f"{path}{line}: the front matter is not valid YAML ({problem}).") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path}, line 2: the front matter should be YAML 'key: value' lines, got {type(meta).__name__}.")
    return meta, "\n".join(lines[end + 1:])


def _after_front_matter(text: str) -> str:
    lines = text.split("\n")
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            return "\n".join(lines[end + 1:])
    return text
