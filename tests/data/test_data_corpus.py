"""read_corpus: Markdown with front matter, text files and text columns, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from appkit.data import read_corpus
from appkit.errors import DataError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_markdown_front_matter_becomes_meta_and_leaves_the_text(tmp_path):
    write(tmp_path / "posts" / "2020-01-02-hello.md", "---\ntitle: Hello\ntags: [a, b]\n---\n\n# Hello\n\nBody text.\n")
    write(tmp_path / "posts" / "notes.txt", "Plain notes.\n")
    write(tmp_path / "posts" / "image.png", "not text")
    docs, report = read_corpus(tmp_path / "posts")
    assert [d.id for d in docs] == ["2020-01-02-hello", "notes"]
    assert docs[0].meta == {"title": "Hello", "tags": ["a", "b"]}
    assert docs[0].text == "# Hello\n\nBody text."
    assert docs[1].text == "Plain notes."
    assert report.skipped_files == ["image.png"] and "1 files of other types skipped" in report.summary()


def test_tabs_in_front_matter_are_read_as_jekyll_does(tmp_path):
    path = write(tmp_path / "p.md", "---\ntitle: Tabs\nauthors:\n- melody\t\t\n---\nText\n")
    docs, report = read_corpus(path)
    assert docs[0].meta["authors"] == ["melody"] and not report.warnings


def test_broken_front_matter_keeps_the_text_and_warns_with_the_file(tmp_path):
    path = write(tmp_path / "p.md", "---\ntitle: [unclosed\n---\nThe body survives.\n")
    docs, report = read_corpus(path)
    assert docs[0].text == "The body survives." and docs[0].meta == {}
    assert len(report.warnings) == 1 and str(path) in report.warnings[0] and "YAML" in report.warnings[0]


def test_table_text_column_is_found_or_named(tmp_path):
    table = write(tmp_path / "reviews.csv", "id,body,stars\n1,Great product,5\n2,Broke in a day,1\n")
    docs, _ = read_corpus(table)
    assert [d.text for d in docs] == ["Great product", "Broke in a day"]
    assert docs[1].meta == {"id": "2", "stars": "1"} and docs[1].source.endswith("reviews.csv:3")
    with pytest.raises(DataError, match=r"no column 'text'; the columns are id, body, stars"):
        read_corpus(table, text_col="text")
    other = write(tmp_path / "other.csv", "id,stars\n1,5\n")
    with pytest.raises(DataError, match=r"no text column found among id, stars"):
        read_corpus(other)


def test_empty_folder_missing_path_and_unknown_file_are_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no .* files"):
        read_corpus(tmp_path / "empty")
    with pytest.raises(DataError, match="no such file or folder"):
        read_corpus(tmp_path / "missing")
    with pytest.raises(DataError, match="unknown file type '.pdf'"):
        read_corpus(write(tmp_path / "x.pdf", "x"))
    write(tmp_path / "blank" / "a.md", "---\ntitle: only front matter\n---\n")
    with pytest.raises(DataError, match="no text found"):
        read_corpus(tmp_path / "blank")
