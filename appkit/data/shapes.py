"""The three shapes a history comes in, how to recognise each, and how to turn it into Conversations.

- pairs: one row per exchange, a customer column and an agent column (Bitext, most FAQ exports).
- long: one row per turn with a conversation id, a speaker and a text (helpdesk exports).
- dialogue: one JSON record per conversation holding a list of turns (Taskmaster, SGD, ABCD,
  ShareGPT, and the OpenAI chat fine-tuning format ``{"messages": [{"role", "content"}]}``).
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from appkit.data.report import ReadReport
from appkit.data.roles import SpeakerMapper
from appkit.data.tables import TURN_LIST_KEYS, Table, cell
from appkit.data.types import Conversation, Turn
from appkit.errors import DataError

SHAPES = ("auto", "pairs", "long", "dialogue", "twcs")

PAIR_COLUMNS = (
    ("instruction", "response"), ("question", "answer"), ("customer", "agent"), ("prompt", "completion"),
    ("input", "output"), ("query", "reply"), ("user", "assistant"), ("message", "response"),
)
CONVERSATION_COLUMNS = (
    "conversation_id", "conv_id", "convo_id", "dialogue_id", "dialog_id", "ticket_id", "thread_id",
    "session_id", "chat_id", "case_id",
)
ROLE_COLUMNS = ("role", "speaker", "author", "sender", "from")
TEXT_COLUMNS = ("text", "message", "content", "utterance", "body")
ORDER_COLUMNS = (
    "turn", "turn_id", "turn_index", "turn_number", "index", "idx", "position", "seq", "sequence",
    "timestamp", "time", "created_at", "date", "datetime", "ts", "sent_at",
)
SPEAKER_KEYS = ("speaker", "role", "author", "from", "sender")
UTTERANCE_KEYS = ("text", "utterance", "content", "value", "message", "body")
ID_KEYS = ("id", "conversation_id", "dialogue_id", "dialog_id", "convo_id", "conv_id", "session_id")

NO_REPLY = "no agent reply"
NO_CUSTOMER = "no customer message"


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def find_column(columns: Iterable[str], candidates: Iterable[str]) -> str | None:
    """The first of ``columns`` matching one of ``candidates`` (case and spacing ignored), by candidate order."""
    by_key = {}
    for col in columns:
        by_key.setdefault(_key(col), col)
    for cand in candidates:
        if _key(cand) in by_key:
            return by_key[_key(cand)]
    return None


def _require(table: Table, name: str, option: str) -> str:
    col = find_column(table.columns, [name])
    if col is None:
        raise DataError(
            f"{table.where(table.records[0][0])}: column {name!r} (given as {option}) is not in the file. "
            f"Columns found: {', '.join(table.columns)}."
        )
    return col


def columns_error(table: Table, shape: str) -> DataError:
    """The error for a file whose columns fit no shape (or not the one asked for)."""
    pairs = ", ".join(f"{u}/{a}" for u, a in PAIR_COLUMNS)
    parts = {
        "pairs": f"pairs shape (one row per exchange): a customer and an agent column, one of {pairs}",
        "long": (
            f"long shape (one row per turn): a conversation id column ({', '.join(CONVERSATION_COLUMNS)}), "
            f"a speaker column ({', '.join(ROLE_COLUMNS)}) and a text column ({', '.join(TEXT_COLUMNS)})"
        ),
        "dialogue": (
            f"dialogue shape (JSON/JSONL, one record per conversation): a list of turns under "
            f"{', '.join(TURN_LIST_KEYS)}, each turn with a speaker ({', '.join(SPEAKER_KEYS)}) and a text "
            f"({', '.join(UTTERANCE_KEYS)})"
        ),
        "twcs": "Twitter customer-support shape: tweet_id, inbound, text and in_response_to_tweet_id",
    }
    wanted = list(parts) if shape == "auto" else [shape]
    tabular = table.format in ("csv", "tsv")
    first = f"{table.path}, line 1 (header)" if tabular else table.where(table.records[0][0])
    return DataError(
        f"{first}: cannot tell which {'columns' if tabular else 'keys'} hold the conversation"
        f"{'' if shape == 'auto' else f' in the {shape} shape'}. {'Columns' if tabular else 'Keys'} found: "
        f"{', '.join(table.columns) or '(none)'}. Expected "
        + "; or ".join(parts[s] for s in wanted)
        + ". Name the columns with user_col=/assistant_col= (pairs) or conversation_col=/role_col=/text_col= "
        "(long), or --user-col/--assistant-col/--conversation-col/--role-col/--text-col on the command line."
    )


def has_turn_lists(table: Table) -> bool:
    """True when the records are dialogues (hold a list of turns) rather than flat rows."""
    return any(isinstance(obj.get(k), list) for _, obj in table.records[:50] for k in TURN_LIST_KEYS)


def detect_long(table: Table) -> bool:
    cols = table.columns
    return all(find_column(cols, c) for c in (CONVERSATION_COLUMNS, ROLE_COLUMNS, TEXT_COLUMNS))


def detect_pairs(table: Table) -> tuple[str, str] | None:
    for user, assistant in PAIR_COLUMNS:
        u, a = find_column(table.columns, [user]), find_column(table.columns, [assistant])
        if u and a:
            return u, a
    return None


def make_turns(items: Iterable[tuple[str, str]]) -> list[Turn]:
    """Turns from (role, text): strip texts, drop empty ones, merge consecutive turns of one role."""
    turns: list[Turn] = []
    for role, text in items:
        text = text.replace("\r\n", "\n").replace("\r", "\n").strip()  # CRLF inside quoted CSV fields
        if not text or role == "skip":
            continue
        if turns and turns[-1].role == role:
            turns[-1] = Turn(role, turns[-1].text + "\n" + text)  # type: ignore[arg-type]
        else:
            turns.append(Turn(role, text))  # type: ignore[arg-type]
    return turns


def usable(turns: list[Turn], report: ReadReport, where: str) -> bool:
    """True when ``turns`` has a customer and an agent turn; otherwise count why in ``report``."""
    roles = {t.role for t in turns}
    if "user" not in roles:
        report.drop(NO_CUSTOMER, where)
        return False
    if "assistant" not in roles:
        report.drop(NO_REPLY, where)
        return False
    return True


# ---------------------------------------------------------------------------------------- pairs


def read_pairs(table: Table, report: ReadReport, user_col: str | None, assistant_col: str | None) -> list[Conversation]:
    """One conversation per row: the customer column, then the agent column."""
    found = detect_pairs(table)
    cols = table.columns
    # With only one column named, the other may be any accepted name for its side.
    u_found = found[0] if found else find_column(cols, [p[0] for p in PAIR_COLUMNS])
    a_found = found[1] if found else find_column(cols, [p[1] for p in PAIR_COLUMNS])
    u = _require(table, user_col, "user_col") if user_col else u_found
    a = _require(table, assistant_col, "assistant_col") if assistant_col else a_found
    if not (u and a):
        raise columns_error(table, "pairs")
    report.columns = {"user": u, "assistant": a}
    id_col = find_column(table.columns, ID_KEYS)
    stem = table.path.stem
    out: list[Conversation] = []
    for loc, row in table.records:
        turns = make_turns([("user", cell(row.get(u))), ("assistant", cell(row.get(a)))])
        if not usable(turns, report, table.source(loc)):
            continue
        meta = {k: v for k, v in row.items() if k not in (u, a, id_col) and cell(v).strip()}
        cid = cell(row.get(id_col)).strip() if id_col else ""
        out.append(Conversation(cid or f"{stem}-{loc}", turns, table.source(loc), meta))
    return out


# ----------------------------------------------------------------------------------------- long


def order_key(value: str) -> float | None:
    """A sortable number for a turn-order or timestamp value, or None when it cannot be read."""
    value = value.strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    when: datetime | None = None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        for parse in (
            lambda v: datetime.strptime(v, "%a %b %d %H:%M:%S %z %Y"),  # Twitter's created_at
            email.utils.parsedate_to_datetime,  # RFC 2822, as mail-based helpdesks export
        ):
            try:
                when = parse(value)
                break
            except (ValueError, TypeError, IndexError):
                continue
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def read_long(
    table: Table,
    report: ReadReport,
    mapper: SpeakerMapper,
    conversation_col: str | None,
    role_col: str | None,
    text_col: str | None,
) -> list[Conversation]:
    """Group rows by conversation id (in order of first appearance), order turns, map speakers."""
    cols = table.columns
    def column(given: str | None, option: str, candidates: tuple[str, ...]) -> str | None:
        return _require(table, given, option) if given else find_column(cols, candidates)

    conv = column(conversation_col, "conversation_col", CONVERSATION_COLUMNS)
    role = column(role_col, "role_col", ROLE_COLUMNS)
    text = column(text_col, "text_col", TEXT_COLUMNS)
    if not (conv and role and text):
        raise columns_error(table, "long")
    order = find_column([c for c in cols if c not in (conv, role, text)], ORDER_COLUMNS)
    report.columns = {"conversation": conv, "role": role, "text": text} | ({"order": order} if order else {})

    groups: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for loc, row in table.records:
        cid = cell(row.get(conv)).strip()
        if not cid:
            report.drop("row without a conversation id", table.source(loc))
            continue
        groups.setdefault(cid, []).append((loc, row))

    out: list[Conversation] = []
    for cid, rows in groups.items():
        if order:
            keys = [order_key(cell(r.get(order))) for _, r in rows]
            if all(k is not None for k in keys):  # otherwise file order is the best we know
                rows = [r for _, r in sorted(zip(keys, rows), key=lambda kr: kr[0])]  # stable on ties
        items = []
        for loc, row in rows:
            r = mapper.role(cell(row.get(role)).strip(), table.source(loc))
            items.append((r or "skip", cell(row.get(text))))
        where = table.source(rows[0][0])
        turns = make_turns(items)
        if not usable(turns, report, where):
            continue
        out.append(Conversation(cid, turns, where, _constant_columns(rows, {conv, role, text, order})))
    mapper.raise_unknown(table.path, role)
    return out


def _constant_columns(rows: list[tuple[int, dict[str, Any]]], used: set[str | None]) -> dict[str, Any]:
    # Columns that hold one value for the whole conversation (intent, channel, csat ...) describe it.
    meta = {k: v for k, v in rows[0][1].items() if k not in used and cell(v).strip()}
    for _, row in rows[1:]:
        meta = {k: v for k, v in meta.items() if row.get(k) == v}
    return meta


# ------------------------------------------------------------------------------------- dialogue


def _content_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, list):  # OpenAI content parts: [{"type": "text", "text": ...}]
        parts = [p.get("text", "") for p in value if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return "\n".join(parts)
    if isinstance(value, (int, float)):
        return str(value)
    return None


def read_dialogues(table: Table, report: ReadReport, mapper: SpeakerMapper) -> list[Conversation]:
    """One conversation per record, from its list of turns."""
    stem = table.path.stem
    out: list[Conversation] = []
    seen_keys: dict[str, None] = {}
    for loc, obj in table.records:
        where = table.source(loc)
        list_key = next((k for k in TURN_LIST_KEYS if isinstance(obj.get(k), list)), None)
        if list_key is None:
            report.drop(f"record without a list of turns ({', '.join(TURN_LIST_KEYS)})", where)
            continue
        seen_keys.setdefault(list_key, None)
        items: list[tuple[str, str]] = []
        for n, turn in enumerate(obj[list_key]):
            pair = _dialogue_turn(turn, mapper, f"{where} turn {n}", report, seen_keys)
            if pair is not None:
                items.append(pair)
        turns = make_turns(items)
        if not usable(turns, report, where):
            continue
        id_key = next((k for k in ID_KEYS if cell(obj.get(k)).strip()), None)
        cid = cell(obj[id_key]).strip() if id_key else f"{stem}-{loc}"
        meta = {k: v for k, v in obj.items() if k not in (list_key, id_key)}
        out.append(Conversation(cid, turns, where, meta))
    report.columns = {"turns": "/".join(k for k in seen_keys if k in TURN_LIST_KEYS)}
    spk = [k for k in seen_keys if k not in TURN_LIST_KEYS]
    report.columns.update({"speaker": "/".join(spk)} if spk else {})
    mapper.raise_unknown(table.path, "/".join(spk) or "speaker")
    return out


def _dialogue_turn(
    turn: Any, mapper: SpeakerMapper, where: str, report: ReadReport, seen_keys: dict[str, None]
) -> tuple[str, str] | None:
    if isinstance(turn, list) and len(turn) == 2 and all(isinstance(x, str) for x in turn):
        speaker, text = turn  # ABCD's "original": [["agent", "Hi!"], ["customer", "..."]]
        seen_keys.setdefault("[speaker, text]", None)
        role = mapper.role(speaker, where)
        return (role or "skip", text)
    if not isinstance(turn, dict):
        report.drop("turn that is not an object", where)
        return None
    spk_key = next((k for k in SPEAKER_KEYS if k in turn), None)
    txt_key = next((k for k in UTTERANCE_KEYS if k in turn), None)
    if spk_key is None or txt_key is None:
        report.drop(f"turn without a speaker ({'/'.join(SPEAKER_KEYS)}) or text ({'/'.join(UTTERANCE_KEYS)})", where)
        return None
    seen_keys.setdefault(spk_key, None)
    speaker, text = cell(turn[spk_key]).strip(), _content_text(turn[txt_key])
    if text is None:
        report.drop("turn whose text is not a string", where)
        return None
    if spk_key == "role" and "content" in turn:
        # The chat-messages shape: roles mean what they say, "system" is a system prompt, tool
        # calls and their results are not conversation text.
        literal = speaker.lower()
        if literal in ("system", "developer"):
            return ("system", text)
        if literal in ("user", "assistant"):
            return (literal, text)
        if literal in ("tool", "function", "ipython"):
            return ("skip", text)
    role = mapper.role(speaker, where)
    return (role or "skip", text)
