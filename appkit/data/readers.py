"""``read_history``: any supported file of past support conversations -> list[Conversation]."""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from pathlib import Path

from appkit.data import shapes
from appkit.data.report import ReadReport
from appkit.data.roles import SpeakerMapper
from appkit.data.tables import Table, read_table
from appkit.data.twcs import detect_twcs, read_twcs
from appkit.data.types import Conversation
from appkit.errors import ConfigError, DataError


def read_history(
    path: str | PathLike[str],
    *,
    shape: str = "auto",
    user_col: str | None = None,
    assistant_col: str | None = None,
    conversation_col: str | None = None,
    role_col: str | None = None,
    text_col: str | None = None,
    speaker_map: Mapping[str, str] | None = None,
    encoding: str = "utf-8",
) -> list[Conversation]:
    """Read a support history file (.csv, .tsv, .jsonl, .json) into conversations."""
    conversations, _ = read_history_with_report(
        path, shape=shape, user_col=user_col, assistant_col=assistant_col, conversation_col=conversation_col,
        role_col=role_col, text_col=text_col, speaker_map=speaker_map, encoding=encoding,
    )
    return conversations


def read_history_with_report(
    path: str | PathLike[str],
    *,
    shape: str = "auto",
    user_col: str | None = None,
    assistant_col: str | None = None,
    conversation_col: str | None = None,
    role_col: str | None = None,
    text_col: str | None = None,
    speaker_map: Mapping[str, str] | None = None,
    encoding: str = "utf-8",
) -> tuple[list[Conversation], ReadReport]:
    """Like ``read_history``, plus a ReadReport of the shape found and what was left out and why.

    Args:
        shape: "auto" (detect from columns/keys), "pairs", "long", "dialogue" or "twcs".
        user_col, assistant_col: the customer and agent columns of a pairs file.
        conversation_col, role_col, text_col: the columns of a long file.
        speaker_map: extra speaker names, e.g. {"Alice": "user", "Northwind": "assistant"}.
        encoding: the text encoding of the file.

    Raises:
        DataError: the file is missing, unreadable, of an unknown shape, or holds no usable
            conversation; the message names the file and the line or record.
        ConfigError: an option is invalid (unknown shape, conflicting columns, bad speaker map).
    """
    path = Path(path)
    if shape not in shapes.SHAPES:
        raise ConfigError(f"shape {shape!r} is not one of {', '.join(shapes.SHAPES)}.")
    pair_cols = user_col or assistant_col
    long_cols = conversation_col or role_col or text_col
    if pair_cols and long_cols:
        raise ConfigError(
            "user_col/assistant_col name the columns of a pairs file and conversation_col/role_col/"
            "text_col those of a long file; give one set, not both."
        )
    report = ReadReport(path=str(path))
    mapper = SpeakerMapper(speaker_map)
    table = read_table(path, encoding, report)
    report.shape = chosen = _choose_shape(table, shape, bool(pair_cols), bool(long_cols))

    if chosen == "pairs":
        conversations = shapes.read_pairs(table, report, user_col, assistant_col)
    elif chosen == "long":
        conversations = shapes.read_long(table, report, mapper, conversation_col, role_col, text_col)
    elif chosen == "dialogue":
        conversations = shapes.read_dialogues(table, report, mapper)
    else:
        conversations = read_twcs(table, report)
    if mapper.blank:
        report.drop("turn without a speaker", mapper.blank[0], len(mapper.blank))
    if not conversations:
        raise _nothing_usable(table, report)
    _make_ids_unique(conversations)
    report.conversations = len(conversations)
    report.turns = sum(len(c.turns) for c in conversations)
    return conversations, report


def _choose_shape(table: Table, shape: str, pair_cols: bool, long_cols: bool) -> str:
    if shape == "dialogue":
        if table.format not in ("json", "jsonl") or not shapes.has_turn_lists(table):
            raise shapes.columns_error(table, "dialogue")
        return shape
    if shape == "twcs" and not detect_twcs(table):
        raise shapes.columns_error(table, "twcs")
    if shape != "auto":
        return shape
    if pair_cols:
        return "pairs"
    if long_cols:
        return "long"
    if table.format in ("json", "jsonl") and shapes.has_turn_lists(table):
        return "dialogue"
    if detect_twcs(table):
        return "twcs"
    if shapes.detect_long(table):
        return "long"
    if shapes.detect_pairs(table):
        return "pairs"
    raise shapes.columns_error(table, "auto")


def _nothing_usable(table: Table, report: ReadReport) -> DataError:
    reasons = "; ".join(
        f"{count} {reason} (first at {report.examples[reason]})"
        for reason, count in sorted(report.dropped.items(), key=lambda kv: -kv[1])
    )
    used = ", ".join(f"{part}={col}" for part, col in report.columns.items())
    return DataError(
        f"{table.path}: no usable conversation in {report.rows} records read as the {report.shape} shape"
        f"{f' ({used})' if used else ''}. Every conversation needs at least one customer turn and one "
        f"agent turn with text. Left out: {reasons or 'nothing'}. {_HINTS[report.shape]}"
    )


_HINTS = {
    "pairs": "If the columns were guessed wrong, name them with user_col=/assistant_col= (--user-col/--assistant-col).",
    "long": "If the columns were guessed wrong, name them with conversation_col=/role_col=/text_col= "
    "(--conversation-col/--role-col/--text-col).",
    "dialogue": "Each record needs a list of turns, each turn a speaker and a text.",
    "twcs": "A thread needs a customer tweet (inbound True) and a company reply (inbound False).",
}


def _make_ids_unique(conversations: list[Conversation]) -> None:
    # Later stages key on ids (store, splits); a repeated id column value must not merge records.
    seen: dict[str, int] = {}
    for conv in conversations:
        n = seen.get(conv.id, 0)
        seen[conv.id] = n + 1
        if n:
            conv.id = f"{conv.id}~{n + 1}"
