"""curate: counts, order of steps, the toxicity hook, and a JSON-serialisable report."""

from __future__ import annotations

import json

import pytest

from appkit.data import Conversation, CurationReport, Turn, curate, truncate_text
from appkit.errors import ConfigError


def conv(cid: str, *texts: str, meta: dict | None = None) -> Conversation:
    roles = ["user", "assistant"] * len(texts)
    return Conversation(cid, [Turn(r, t) for r, t in zip(roles, texts)], f"f.csv:{cid}", meta or {})


def test_empty_turns_and_conversations():
    convs = [
        conv("1", "hi", "  ", "where is it?", "on its way"),  # empty agent turn: the two user turns merge
        conv("2", "hello", ""),  # no agent text at all
        conv("3", "", ""),
    ]
    out, report = curate(convs)
    assert [c.id for c in out] == ["1"]
    assert out[0].turns == [Turn("user", "hi\nwhere is it?"), Turn("assistant", "on its way")]
    assert report.empty_turns_dropped == 4 and report.empty_conversations_dropped == 2
    assert (report.conversations_in, report.conversations_out) == (3, 1)


def test_duplicates_ignore_case_and_whitespace_and_keep_the_first():
    convs = [conv("a", "Where is my order?", "It shipped."), conv("b", "where  is my ORDER?", " it shipped. "), conv("c", "x", "y")]
    out, report = curate(convs)
    assert [c.id for c in out] == ["a", "c"] and report.duplicates_dropped == 1


def test_duplicates_are_judged_before_scrubbing():
    out, report = curate([conv("a", "order 48213?", "ok"), conv("b", "order 51234?", "ok")])
    assert len(out) == 2 and report.duplicates_dropped == 0
    assert out[0].turns[0].text == "order [ORDER_ID]?"


def test_pii_counts_and_switch():
    convs = [conv("a", "I'm jane@example.com, order 48213", "Thanks, we'll call 555-0142"), conv("b", "x@y.org", "ok")]
    out, report = curate(convs)
    assert report.pii == {"email": 2, "order_id": 1, "phone": 1} and report.pii_total == 4
    assert out[0].turns[1].text == "Thanks, we'll call [PHONE]"
    out, report = curate(convs, scrub_pii=False)
    assert report.pii == {} and out[0].turns[0].text.startswith("I'm jane@example.com")


def test_bitext_template_slots_survive_curation():
    text = "Log in to {{Website Name}}, open {{Order History}} and find {{Order Number}}."
    out, report = curate([conv("a", "cancel purchase 113542617735902", text)])
    assert out[0].turns[1].text == text and report.pii == {"order_id": 1}


def test_truncation_at_word_boundary_is_counted():
    long = "word " * 100
    out, report = curate([conv("a", long, "short reply")], max_turn_chars=42)
    assert report.turns_truncated == 1
    assert out[0].turns[0].text == ("word " * 8).strip()  # 39 characters, whole words only
    assert out[0].turns[1].text == "short reply"


def test_truncate_text():
    assert truncate_text("short", 10) == "short"
    assert truncate_text("abcdefghijklmnop", 5) == "abcde"  # no space: cut mid-word
    assert truncate_text("see the {{Order Number}} page", 20) == "see the"  # never half a template slot
    assert len(truncate_text("x " * 5000, 2000)) <= 2000


def test_toxicity_hook_drop_and_keep():
    convs = [conv("a", "you idiots", "Sorry!"), conv("b", "hi", "hello"), conv("c", "thanks", "you idiot")]
    is_toxic = lambda text: "idiot" in text  # noqa: E731 - a trivial stand-in for the safety classifier
    out, report = curate(convs, is_toxic=is_toxic)
    assert [c.id for c in out] == ["b"] and report.toxic_dropped == 2
    out, report = curate(convs, is_toxic=is_toxic, toxic="keep")
    assert len(out) == 3 and report.toxic_kept == 2 and report.toxic_dropped == 0
    assert [c.meta.get("toxic", False) for c in out] == [True, False, True]
    out, report = curate(convs, is_toxic=is_toxic, toxic_roles=("assistant",))  # angry customers are fine
    assert [c.id for c in out] == ["a", "b"] and report.toxic_dropped == 1


def test_input_is_not_mutated_and_fields_are_kept():
    original = conv("a", "mail me: a@b.com", "ok", meta={"intent": "x"})
    out, _ = curate([original])
    assert original.turns[0].text == "mail me: a@b.com"
    assert (out[0].id, out[0].source, out[0].meta) == ("a", "f.csv:a", {"intent": "x"})
    assert out[0].meta is not original.meta


def test_report_is_json_serialisable_and_readable():
    _, report = curate([conv("a", "order 48213", "ok"), conv("b", "order 48213", "ok")], seed=3)
    data = json.loads(json.dumps(report.as_dict()))
    assert data["duplicates_dropped"] == 1 and data["pii"] == {"order_id": 1} and data["settings"]["seed"] == 3
    summary = report.summary()
    assert "curated 2 -> 1 conversations" in summary and "1 order ids" in summary
    assert isinstance(report, CurationReport)


def test_bad_options():
    with pytest.raises(ConfigError):
        curate([], max_turn_chars=0)
    with pytest.raises(ConfigError):
        curate([], toxic="flag")
