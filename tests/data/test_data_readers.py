"""read_history: every shape in every format, detection, overrides and speaker mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appkit.data import Turn, parse_speaker_map, read_history, read_history_with_report
from appkit.errors import ConfigError

FORMATS = ["csv", "tsv", "jsonl", "json"]

PAIRS = [
    {"instruction": "Where is my order?", "response": "It shipped on Monday.", "intent": "order_status"},
    {"instruction": "Cancel it please", "response": "Done, it is cancelled.", "intent": "cancel_order"},
]
LONG = [
    {"conversation_id": "a", "role": "customer", "text": "Hi, my package is late."},
    {"conversation_id": "b", "role": "customer", "text": "How do I reset my password?"},
    {"conversation_id": "a", "role": "agent", "text": "Sorry! What is the order number?"},
    {"conversation_id": "a", "role": "customer", "text": "48213"},
    {"conversation_id": "b", "role": "agent", "text": "Use the Forgot password link."},
    {"conversation_id": "a", "role": "agent", "text": "It arrives tomorrow."},
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_pairs_in_every_format(write, fmt):
    convs, report = read_history_with_report(write(f"h.{fmt}", PAIRS))
    assert report.shape == "pairs" and report.format == fmt
    assert report.columns == {"user": "instruction", "assistant": "response"}
    assert [c.turns for c in convs] == [
        [Turn("user", "Where is my order?"), Turn("assistant", "It shipped on Monday.")],
        [Turn("user", "Cancel it please"), Turn("assistant", "Done, it is cancelled.")],
    ]
    assert [c.meta["intent"] for c in convs] == ["order_status", "cancel_order"]
    assert len({c.id for c in convs}) == 2
    # Line-based formats point at lines (CSV/TSV: the header is line 1), JSON at record indices.
    expected = {
        "csv": ["h.csv:2", "h.csv:3"], "tsv": ["h.tsv:2", "h.tsv:3"],
        "jsonl": ["h.jsonl:1", "h.jsonl:2"], "json": ["h.json#0", "h.json#1"],
    }[fmt]
    assert [c.source.rsplit("/", 1)[-1] for c in convs] == expected


@pytest.mark.parametrize(
    "user,assistant",
    [("question", "answer"), ("Customer", "Agent"), ("prompt", "completion"), ("input", "output"),
     ("query", "reply"), ("user", "assistant"), ("message", "response"), ("INSTRUCTION", "Response")],
)
def test_pairs_accepts_every_column_pair_case_insensitively(write, user, assistant):
    convs = read_history(write("h.csv", [{user: "q?", assistant: "a."}]))
    assert convs[0].as_messages() == [{"role": "user", "content": "q?"}, {"role": "assistant", "content": "a."}]


def test_csv_line_numbers_follow_multiline_fields(write):
    rows = [
        {"question": "first\nspans\nthree lines", "answer": "ok"},
        {"question": "second", "answer": "multi\r\nline reply"},
        {"question": "third", "answer": "ok"},
    ]
    convs = read_history(write("h.csv", rows))
    assert [c.source.rsplit(":", 1)[1] for c in convs] == ["2", "5", "7"]
    assert convs[1].turns[1].text == "multi\nline reply"  # CRLF inside a quoted field is normalised


@pytest.mark.parametrize("fmt", FORMATS)
def test_long_in_every_format(write, fmt):
    convs, report = read_history_with_report(write(f"h.{fmt}", LONG))
    assert report.shape == "long"
    assert [c.id for c in convs] == ["a", "b"]  # order of first appearance
    assert [t.role for t in convs[0].turns] == ["user", "assistant", "user", "assistant"]
    assert convs[0].turns[2].text == "48213"
    assert convs[1].source.endswith({"csv": ":3", "tsv": ":3", "jsonl": ":2", "json": "#1"}[fmt])


def test_long_merges_consecutive_turns_and_sorts_by_order_column(write):
    rows = [
        {"ticket_id": "t1", "speaker": "Agent", "body": "Anything else?", "turn": "3"},
        {"ticket_id": "t1", "speaker": "Customer", "body": "Hello", "turn": "1"},
        {"ticket_id": "t1", "speaker": "customer", "body": "my order is late", "turn": "2"},
        {"ticket_id": "t1", "speaker": "agent", "body": "Sorry about that.", "turn": "2.5"},
    ]
    convs, report = read_history_with_report(write("h.csv", rows))
    assert report.columns["order"] == "turn"
    assert convs[0].turns == [
        Turn("user", "Hello\nmy order is late"),
        Turn("assistant", "Sorry about that.\nAnything else?"),
    ]


def test_long_sorts_by_timestamp_and_keeps_constant_columns_as_meta(write):
    rows = [
        {"thread_id": "x", "from": "agent", "message": "Sure.", "created_at": "2024-01-02T10:05:00", "channel": "chat", "csat": "5"},
        {"thread_id": "x", "from": "user", "message": "Help?", "created_at": "2024-01-02T10:00:00", "channel": "chat", "csat": "4"},
    ]
    convs = read_history(write("h.csv", rows))
    assert [t.text for t in convs[0].turns] == ["Help?", "Sure."]
    assert convs[0].meta == {"channel": "chat"}  # csat differs between rows: not a conversation property


def test_long_keeps_file_order_when_order_column_is_unreadable(write):
    rows = [
        {"session_id": "s", "sender": "customer", "content": "one", "timestamp": "yesterday"},
        {"session_id": "s", "sender": "bot", "content": "two", "timestamp": "earlier"},
    ]
    assert [t.text for t in read_history(write("h.csv", rows))[0].turns] == ["one", "two"]


DIALOGUES_TASKMASTER = [
    {"conversation_id": "dlg-1", "vertical": "Coffee", "utterances": [
        {"index": 0, "speaker": "user", "text": "one latte please"},
        {"index": 1, "speaker": "assistant", "text": "Anything else?"},
        {"index": 2, "speaker": "user", "text": "no"},
    ]},
    {"conversation_id": "dlg-2", "vertical": "Coffee", "utterances": [
        {"speaker": "assistant", "text": "Hi! What can I get you?"},
        {"speaker": "user", "text": "a mocha"},
        {"speaker": "assistant", "text": "Coming up."},
    ]},
]


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_dialogue_taskmaster_shape(write, fmt):
    convs, report = read_history_with_report(write(f"d.{fmt}", DIALOGUES_TASKMASTER))
    assert report.shape == "dialogue"
    assert [c.id for c in convs] == ["dlg-1", "dlg-2"]
    assert convs[0].meta == {"vertical": "Coffee"}
    assert convs[1].turns[0] == Turn("assistant", "Hi! What can I get you?")  # a leading greeting is fine


def test_dialogue_sgd_shape_maps_SYSTEM_to_the_agent(write):
    sgd = [{"dialogue_id": "1_00000", "services": ["Banks_1"], "turns": [
        {"frames": [], "speaker": "USER", "utterance": "Check my balance."},
        {"frames": [], "speaker": "SYSTEM", "utterance": "Which account?"},
        {"frames": [], "speaker": "USER", "utterance": "Checking."},
        {"frames": [], "speaker": "SYSTEM", "utterance": "You have $1,548.23."},
    ]}]
    convs = read_history(write("dialogues_001.json", sgd))
    assert convs[0].id == "1_00000" and convs[0].meta == {"services": ["Banks_1"]}
    assert [t.role for t in convs[0].turns] == ["user", "assistant", "user", "assistant"]


def test_dialogue_openai_messages_jsonl(write):
    rows = [
        {"id": "17", "app": "support", "status": "closed", "messages": [
            {"role": "system", "content": "You are Northwind's assistant."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "t"}]},
            {"role": "tool", "content": "lookup result"},
            {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]},
        ]},
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
    ]
    convs = read_history(write("export.jsonl", rows))
    assert convs[0].id == "17" and convs[0].meta == {"app": "support", "status": "closed"}
    # In the chat-messages shape "system" is a system prompt, not the agent; tool turns are skipped.
    assert convs[0].turns == [Turn("system", "You are Northwind's assistant."), Turn("user", "hi"), Turn("assistant", "Hello!")]
    assert convs[1].id == "export-2"  # no id key: file stem and line


def test_dialogue_sharegpt_and_abcd_shapes(write):
    rows = [
        {"conversations": [{"from": "human", "value": "hello"}, {"from": "gpt", "value": "hi there"}]},
        {"convo_id": 3592, "original": [["agent", "Hi!"], ["customer", "I need a return"], ["action", "Account pulled up"], ["agent", "Sure."]]},
    ]
    convs = read_history(write("mixed.json", rows))
    assert convs[0].as_messages()[1] == {"role": "assistant", "content": "hi there"}
    assert convs[1].id == "3592"
    assert [t.text for t in convs[1].turns] == ["Hi!", "I need a return", "Sure."]  # "action" lines skipped


def test_dialogue_single_object_file(tmp_path: Path):
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"turns": [{"role": "customer", "text": "a"}, {"role": "agent", "text": "b"}]}))
    assert len(read_history(path)) == 1


def test_json_object_wrapping_a_list_of_records(tmp_path: Path):
    path = tmp_path / "wrapped.json"
    path.write_text(json.dumps({"data": PAIRS}))
    assert len(read_history(path)) == 2


def test_shape_override_and_column_options(write):
    rows = [{"conversation_id": "1", "role": "customer", "text": "t1", "question": "q1", "answer": "a1"},
            {"conversation_id": "1", "role": "agent", "text": "t2", "question": "q2", "answer": "a2"}]
    path = write("both.csv", rows)
    assert read_history_with_report(path)[1].shape == "long"
    convs, report = read_history_with_report(path, shape="pairs")
    assert report.shape == "pairs" and len(convs) == 2 and convs[0].turns[1].text == "a1"
    convs = read_history(path, user_col="text", assistant_col="answer")  # columns imply the pairs shape
    assert convs[1].as_messages() == [{"role": "user", "content": "t2"}, {"role": "assistant", "content": "a2"}]


def test_long_with_custom_column_names(write):
    rows = [{"Fall": "7", "Wer": "Kunde", "Nachricht": "Hallo"}, {"Fall": "7", "Wer": "Support", "Nachricht": "Guten Tag"}]
    convs = read_history(
        write("de.csv", rows), conversation_col="Fall", role_col="Wer", text_col="Nachricht", speaker_map={"Kunde": "user"}
    )
    assert convs[0].id == "7" and [t.role for t in convs[0].turns] == ["user", "assistant"]


@pytest.mark.parametrize("name", ["customer", "CLIENT", "User", "human", "caller", "usr"])
def test_known_user_names(write, name):
    rows = [{"conversation_id": "1", "role": name, "text": "q"}, {"conversation_id": "1", "role": "agent", "text": "a"}]
    assert read_history(write("h.csv", rows))[0].turns[0].role == "user"


@pytest.mark.parametrize("name", ["agent", "Assistant", "support", "SYSTEM", "bot", "representative", "rep", "operator"])
def test_known_agent_names(write, name):
    rows = [{"conversation_id": "1", "role": "customer", "text": "q"}, {"conversation_id": "1", "role": name, "text": "a"}]
    assert read_history(write("h.csv", rows))[0].turns[1].role == "assistant"


def test_speaker_map_extends_and_overrides(write):
    rows = [
        {"conversation_id": "1", "role": "Alice", "text": "my order?"},
        {"conversation_id": "1", "role": "Northwind Team", "text": "on its way"},
        {"conversation_id": "1", "role": "system", "text": "[ticket closed]"},
    ]
    convs = read_history(write("h.csv", rows), speaker_map={"alice": "user", "northwind_team": "agent", "System": "skip"})
    assert convs[0].turns == [Turn("user", "my order?"), Turn("assistant", "on its way")]


def test_parse_speaker_map():
    assert parse_speaker_map(["Alice=user", " Bob = agent ", "Bot=assistant", "Log=skip"]) == {
        "Alice": "user", "Bob": "assistant", "Bot": "assistant", "Log": "skip",
    }
    with pytest.raises(ConfigError, match="NAME=ROLE"):
        parse_speaker_map(["Alice"])
    with pytest.raises(ConfigError, match="'Alice'='boss'.*user, assistant, system, skip"):
        parse_speaker_map(["Alice=boss"])


def test_rows_without_a_reply_are_dropped_and_counted(write):
    rows = PAIRS + [{"instruction": "hello?", "response": "", "intent": "x"}, {"instruction": "", "response": "hm", "intent": "y"}]
    convs, report = read_history_with_report(write("h.csv", rows))
    assert len(convs) == 2 and report.rows == 4 and report.conversations == 2 and report.turns == 4
    assert report.dropped == {"no agent reply": 1, "no customer message": 1}
    assert report.examples["no agent reply"].endswith("h.csv:4")
    assert "left out 1: no agent reply" in report.summary()
    json.dumps(report.as_dict())


def test_repeated_ids_are_made_unique(write):
    rows = [{"id": "7", "question": "a", "answer": "b"}, {"id": "7", "question": "c", "answer": "d"}]
    assert [c.id for c in read_history(write("h.csv", rows))] == ["7", "7~2"]


def test_bom_semicolons_and_other_encodings(tmp_path: Path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffquestion;answer\nWo ist meine Bestellung?;Unterwegs, Grüße\n".encode("utf-8"))
    assert read_history(path)[0].turns[1].text == "Unterwegs, Grüße"
    latin = tmp_path / "latin.csv"
    latin.write_bytes("question,answer\ncafé?,oui\n".encode("latin-1"))
    assert read_history(latin, encoding="latin-1")[0].turns[0].text == "café?"


def test_extension_is_case_insensitive_and_blank_rows_are_skipped(tmp_path: Path):
    path = tmp_path / "H.CSV"
    path.write_text("question,answer\n\nq,a\n,\n", encoding="utf-8")
    convs, report = read_history_with_report(path)
    assert len(convs) == 1 and convs[0].source.endswith(":3") and report.rows == 1


def test_row_with_too_many_fields_is_dropped_and_counted(tmp_path: Path):
    path = tmp_path / "h.csv"
    path.write_text("question,answer\nq1,a1\nq2, with comma,a2\n", encoding="utf-8")
    convs, report = read_history_with_report(path)
    assert len(convs) == 1 and sum(report.dropped.values()) == 1
    assert next(iter(report.examples.values())).endswith("h.csv:3")


def test_naming_one_pairs_column_finds_the_other(write):
    convs = read_history(write("h.csv", [{"Kundenfrage": "wo?", "response": "hier"}]), user_col="kundenfrage")
    assert convs[0].as_messages()[1]["content"] == "hier"
