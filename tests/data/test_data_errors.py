"""Every way a history file can be wrong gives one DataError naming the file, the place and what was expected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appkit.data import read_history, read_history_with_report
from appkit.errors import AppkitError, ConfigError, DataError


def error(path: Path, **kw) -> str:
    with pytest.raises(DataError) as info:
        read_history(path, **kw)
    message = str(info.value)
    assert "\n" not in message  # one paragraph
    return message


def test_missing_file(tmp_path: Path):
    msg = error(tmp_path / "nope.csv")
    assert "nope.csv" in msg and "no such file" in msg


def test_directory(tmp_path: Path):
    (tmp_path / "d.csv").mkdir()
    assert "is a directory" in error(tmp_path / "d.csv")


def test_unknown_extension(tmp_path: Path):
    path = tmp_path / "h.xlsx"
    path.write_text("x")
    msg = error(path)
    assert "h.xlsx" in msg and "'.xlsx'" in msg and ".csv, .tsv, .jsonl or .json" in msg


@pytest.mark.parametrize("name,content", [("e.csv", ""), ("e.jsonl", "\n\n"), ("e.json", "  ")])
def test_empty_file(tmp_path: Path, name, content):
    path = tmp_path / name
    path.write_text(content)
    msg = error(path)
    assert name in msg and "empty" in msg


@pytest.mark.parametrize("name,content", [("h.csv", "question,answer\n"), ("h.json", "[]")])
def test_no_records(tmp_path: Path, name, content):
    path = tmp_path / name
    path.write_text(content)
    assert "no records" in error(path)


def test_undecodable_bytes_name_line_offset_and_the_encoding_option(tmp_path: Path):
    path = tmp_path / "win.csv"
    path.write_bytes(b"question,answer\nok,fine\ncaf\xe9?,oui\n")
    msg = error(path)
    assert "win.csv, line 3" in msg and "byte offset 27" in msg and "encoding=" in msg and "--encoding" in msg


def test_unknown_encoding_is_a_config_error(tmp_path: Path):
    path = tmp_path / "h.csv"
    path.write_text("question,answer\nq,a\n")
    with pytest.raises(ConfigError, match="klingon"):
        read_history(path, encoding="klingon")


def test_invalid_json_names_line_and_column(tmp_path: Path):
    path = tmp_path / "bad.json"
    path.write_text('[\n  {"question": "q", "answer": "a"},\n  {"question": "q" "answer": "a"}\n]')
    msg = error(path)
    assert "bad.json, line 3, column 20" in msg and "invalid JSON" in msg


def test_invalid_jsonl_line(tmp_path: Path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "q", "answer": "a"}\n\n{"question": "q", "answer": \n')
    msg = error(path)
    assert "bad.jsonl, line 3, column" in msg and "invalid JSON" in msg


def test_jsonl_line_that_is_not_an_object(tmp_path: Path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "q", "answer": "a"}\n["q", "a"]\n')
    assert "bad.jsonl, line 2: expected a JSON object" in error(path)


def test_json_record_that_is_not_an_object(tmp_path: Path):
    path = tmp_path / "bad.json"
    path.write_text('[{"question": "q", "answer": "a"}, "oops"]')
    assert "bad.json, record 1 (counting from 0): expected a JSON object" in error(path)


def test_json_scalar_or_unknown_object(tmp_path: Path):
    path = tmp_path / "bad.json"
    path.write_text("42")
    assert "expected a JSON list" in error(path)
    path.write_text('{"meta": {}, "version": 2}')
    msg = error(path)
    assert "'meta', 'version'" in msg and "data" in msg


def test_missing_columns_list_found_and_accepted(write):
    msg = error(write("h.csv", [{"text": "hello", "category": "x"}]))
    assert "h.csv, line 1 (header)" in msg
    assert "Columns found: text, category" in msg
    for accepted in ("instruction/response", "question/answer", "conversation_id", "speaker", "utterance", "in_response_to_tweet_id"):
        assert accepted in msg
    assert "user_col=" in msg and "--role-col" in msg


def test_missing_keys_in_json_records(write):
    msg = error(write("schema.json", [{"service_name": "Banks_1", "intents": []}]))
    assert "schema.json, record 0" in msg and "Keys found: service_name, intents" in msg


def test_explicit_shape_with_missing_columns(write):
    path = write("h.csv", [{"conversation_id": "1", "role": "customer", "text": "hi"}])
    msg = error(path, shape="pairs")
    assert "in the pairs shape" in msg and "Columns found: conversation_id, role, text" in msg
    assert "long shape" not in msg  # only what the asked-for shape needs


def test_explicit_column_that_does_not_exist(write):
    msg = error(write("h.csv", [{"question": "q", "answer": "a"}]), user_col="Kunde")
    assert "h.csv, line 2" in msg and "'Kunde' (given as user_col)" in msg and "Columns found: question, answer" in msg


def test_dialogue_shape_needs_json(write):
    msg = error(write("h.csv", [{"question": "q", "answer": "a"}]), shape="dialogue")
    assert "dialogue shape" in msg and "utterances" in msg


def test_unknown_speakers_are_listed_with_their_lines_and_the_fix(write):
    rows = [
        {"conversation_id": "1", "speaker": "Alice", "text": "hi"},
        {"conversation_id": "1", "speaker": "agent", "text": "hello"},
        {"conversation_id": "2", "speaker": "Bob", "text": "yo"},
    ]
    msg = error(write("h.csv", rows))
    assert "h.csv" in msg and "'Alice' (first at " in msg and "h.csv:2" in msg and "'Bob'" in msg and "h.csv:4" in msg
    assert "customer" in msg and "agent" in msg  # the known names
    assert "--speaker-map 'Alice=user'" in msg and "speaker_map=" in msg


def test_unknown_speaker_in_a_dialogue_names_the_record_and_turn(write):
    rows = [{"turns": [{"speaker": "USER", "utterance": "hi"}, {"speaker": "WIZARD", "utterance": "hello"}]}]
    msg = error(write("d.json", rows))
    assert "'WIZARD' (first at " in msg and "d.json#0 turn 1" in msg


def test_every_conversation_without_a_reply_is_an_error(write):
    msg = error(write("h.csv", [{"question": "q1", "answer": ""}, {"question": "q2", "answer": " "}]))
    assert "h.csv" in msg and "no usable conversation" in msg and "2 no agent reply (first at " in msg and "h.csv:2" in msg


def test_single_conversation_without_an_agent_turn(write):
    msg = error(write("h.jsonl", [{"messages": [{"role": "user", "content": "hello?"}]}]))
    assert "h.jsonl" in msg and "no agent reply" in msg and "h.jsonl:1" in msg


def test_some_conversations_without_a_reply_are_only_counted(write):
    rows = [{"question": "q", "answer": "a"}, {"question": "q2", "answer": ""}]
    convs, report = read_history_with_report(write("h.csv", rows))
    assert len(convs) == 1 and report.dropped == {"no agent reply": 1}


def test_bad_options_are_config_errors(write):
    path = write("h.csv", [{"question": "q", "answer": "a"}])
    with pytest.raises(ConfigError, match="shape 'rows'"):
        read_history(path, shape="rows")
    with pytest.raises(ConfigError, match="give one set"):
        read_history(path, user_col="question", text_col="answer")
    with pytest.raises(ConfigError, match="role must be one of"):
        read_history(path, speaker_map={"Alice": "boss"})


@pytest.mark.parametrize(
    "name,content",
    [
        ("g.csv", '"unterminated,quote\nq,a'),
        ("g.csv", "a,b\n1,2\n"),
        ("g.tsv", "\x00\x01\x02"),
        ("g.json", '{"turns": "not a list"}'),
        ("g.json", '[{"turns": [1, 2, 3]}]'),
        ("g.json", '[{"turns": [{"speaker": "user"}]}]'),
        ("g.jsonl", '{"messages": [{"role": "user", "content": {"x": 1}}, {"role": "assistant", "content": "a"}]}'),
        ("g.json", '[{"utterances": [], "id": null}]'),
        ("g.csv", "tweet_id,inbound,text,in_response_to_tweet_id\n1,maybe,hi,\n"),
    ],
)
def test_garbage_never_escapes_as_a_raw_exception(tmp_path: Path, name, content):
    path = tmp_path / name
    path.write_text(content)
    try:
        read_history(path)
    except AppkitError as e:
        assert name in str(e)
    # Loading successfully is fine too; anything else (KeyError, JSONDecodeError ...) fails the test.


def test_json_values_of_other_types_are_read_as_text(tmp_path: Path):
    path = tmp_path / "h.jsonl"
    path.write_text(json.dumps({"question": 12, "answer": True}) + "\n")
    assert read_history(path)[0].as_messages() == [{"role": "user", "content": "12"}, {"role": "assistant", "content": "True"}]


def test_unclosed_quote_names_the_line_where_it_starts(tmp_path: Path):
    path = tmp_path / "h.csv"
    path.write_text('question,answer\nq1,a1\n"q2 never closed,a2\nq3,a3\n')
    msg = error(path)
    assert "h.csv, line 3" in msg and "never closed" in msg


def test_stray_quotes_are_read_leniently(tmp_path: Path):
    path = tmp_path / "h.csv"
    path.write_text('question,answer\n"where" is it,on its way\n')
    assert read_history(path)[0].turns[0].text == "where is it"


def test_missing_file_with_an_unknown_extension_says_it_is_missing(tmp_path: Path):
    assert "no such file" in error(tmp_path / "tickets.txt")
