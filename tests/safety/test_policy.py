"""The policy: actions per threshold and direction, masking, streaming guard, records, curation filter."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from appkit.config import load_settings
from appkit.errors import ConfigError
from appkit.safety.policy import DEFAULT_RULES, Policy, Rule, load_policy, policy_rules, record, toxicity_filter


class Fixed:
    """A classifier that scores by keyword: the first key found in a text gives its scores."""

    name = "fixed"
    labels = ("toxicity", "insult", "threat")

    def __init__(self, table: dict[str, dict[str, float]]) -> None:
        self.table = table
        self.calls: list[str] = []

    def score(self, texts: Sequence[str]) -> list[dict[str, float]]:
        out = []
        for text in texts:
            self.calls.append(text)
            hit = next((v for k, v in self.table.items() if k in text.lower()), {})
            out.append({label: float(hit.get(label, 0.0)) for label in self.labels})
        return out


TABLE = {
    "idiot": {"toxicity": 0.9, "insult": 0.9},
    "kill": {"toxicity": 0.95, "threat": 0.9},
    "meh": {"toxicity": 0.3},
    "shit": {"toxicity": 0.8},
    "bad-no-words": {"toxicity": 0.7},
}


@pytest.fixture
def policy() -> Policy:
    return Policy("support", Fixed(TABLE))


def test_input_actions(policy: Policy) -> None:
    assert policy.check("where is my order?", "input").action == "allow"
    assert policy.check("meh", "input").action == "allow"
    d = policy.check("you idiot", "input")
    assert d.action == "flag" and d.text == "you idiot" and "insult 0.90 >= 0.50: flag" in d.reason
    d = policy.check("I will kill you", "input")
    assert d.action == "escalate" and d.text == "I will kill you" and "threat" in d.labels


def test_output_masks_profanity_and_blocks_the_rest(policy: Policy) -> None:
    d = policy.check("shit, your order is late.", "output")
    assert d.action == "mask" and d.text == "****, your order is late." and "masked" in d.reason
    d = policy.check("you idiot", "output")
    assert d.action == "block" and "idiot" not in d.text and "sorry" in d.text.lower()
    d = policy.check("bad-no-words here", "output")  # toxic, but no word the lexicon can mask
    assert d.action == "block" and "nothing to mask" in d.reason
    assert policy.check("Your refund is on its way.", "output").action == "allow"


def test_thresholds_decide(policy: Policy) -> None:
    strict = Policy("support", Fixed(TABLE), rules={"input": (Rule("toxicity", 0.2, "flag"),), "output": ()})
    assert strict.check("meh", "input").action == "flag"
    assert strict.check("I will kill you", "input").action == "flag"  # no threat rule any more
    assert strict.check("you idiot", "output").action == "allow"


def test_labels_the_model_lacks_come_from_the_lexicon(policy: Policy) -> None:
    d = policy.check("all immigrants are vermin", "input")
    assert d.scores["identity_attack"] >= 0.9 and d.action == "escalate"


def test_decision_is_json_serialisable(policy: Policy) -> None:
    d = policy.check("you idiot", "output")
    data = json.loads(json.dumps(d.as_dict()))
    assert data["action"] == "block" and data["backend"] == "fixed" and data["direction"] == "output"
    assert data["scores"]["insult"] == 0.9 and "text" not in data
    assert policy.check("", "input").action == "allow"
    with pytest.raises(ConfigError, match="direction 'sideways'"):
        policy.check("hi", "sideways")


def _pieces(text: str, consumed: list[str]) -> Iterator[str]:
    """Word-sized pieces, as a model streams them; records how far it was read."""
    for word in text.split(" "):
        piece = word + " "
        consumed.append(piece)
        yield piece


def test_guard_stream_stops_a_toxic_sentence_before_it_is_shown(policy: Policy) -> None:
    consumed: list[str] = []
    reply = "Your order shipped yesterday. You are an idiot and I hate you. Anything else?"
    guarded = policy.guard_stream(_pieces(reply, consumed))
    shown = []
    for piece in guarded:
        shown.append(piece)
        assert "idiot" not in "".join(shown) and "You are" not in "".join(shown)
    text = "".join(shown)
    assert text.startswith("Your order shipped yesterday. ")
    assert "sorry" in text.lower()
    assert "Anything" not in "".join(consumed)  # the rest of the reply was never even read
    d = guarded.decision
    assert d is not None and d.action == "block" and d.text == text and d.scores["insult"] == 0.9
    assert "sentence 2" in d.reason


def test_guard_stream_passes_clean_text_and_masks(policy: Policy) -> None:
    reply = "Thanks for waiting! Your refund is on its way.\nAnything else?"
    guarded = policy.guard_stream(iter(list(reply)))  # one character at a time
    assert "".join(guarded) == reply
    assert guarded.decision.action == "allow" and guarded.decision.text == reply

    guarded = policy.guard_stream(iter(["Oh ", "shit, ", "sorry. ", "Your order is late."]))
    assert "".join(guarded) == "Oh ****, sorry. Your order is late."
    assert guarded.decision.action == "mask"


def test_guard_stream_checks_long_runs_without_punctuation(policy: Policy) -> None:
    consumed: list[str] = []
    reply = "word " * 80 + "idiot " + "word " * 200
    guarded = policy.guard_stream(_pieces(reply, consumed))
    text = "".join(guarded)
    assert "idiot" not in text and guarded.decision.action == "block"
    assert len(consumed) < 200  # stopped well before the end


def test_guard_stream_cancels_an_engine_stream(policy: Policy) -> None:
    class Stream:
        stats = "stats"
        cancelled = False

        def __iter__(self) -> Iterator[str]:
            yield from ["You ", "idiot. ", "More ", "text."]

        def cancel(self) -> None:
            self.cancelled = True

    source = Stream()
    guarded = policy.guard_stream(source)
    list(guarded)
    assert source.cancelled and guarded.stats == "stats"


def test_record_writes_a_moderation_event(policy: Policy, tmp_path: Path) -> None:
    from appkit.store import open_store

    with open_store(url=f"sqlite:///{tmp_path / 'db.sqlite'}") as store:
        conv = store.create_conversation("support")
        msg = store.append_message(conv.id, "user", "you idiot")
        d = policy.check("you idiot", "input")
        event = record(store, d, app="support", direction="input", conversation_id=conv.id, message_id=msg.id)
        assert event.action == "flag" and event.backend == "fixed" and event.scores["insult"] == 0.9
        [stored] = store.moderation_events("support")
        assert stored.message_id == msg.id and stored.direction == "input"


def test_rules_from_appkit_toml(tmp_path: Path) -> None:
    (tmp_path / "appkit.toml").write_text(
        "[safety.policy.input]\ninsult = { threshold = 0.95, action = \"escalate\" }\n"
        "[safety.apps.support.policy.output]\nobscene = \"block\"\ntoxicity = 0.2\nthreat = \"off\"\n")
    cfg = load_settings().safety
    rules = policy_rules("support", cfg)
    by = {d: {r.label: r for r in rules[d]} for d in rules}
    assert by["input"]["insult"] == Rule("insult", 0.95, "escalate")
    assert by["output"]["obscene"].action == "block" and by["output"]["toxicity"].threshold == 0.2
    assert "threat" not in by["output"]
    other = policy_rules("writer", cfg)  # another app keeps the defaults for output
    assert {r.label: r for r in other["output"]}["obscene"] == next(r for r in DEFAULT_RULES["output"] if r.label == "obscene")


@pytest.mark.parametrize("toml, match", [
    ('[safety.policy.input]\ninsult = "shout"\n', r'\[safety.policy.input\] insult = "shout": expected a number, a table '
                                                r'of threshold, action or one of "allow", "flag"'),
    ("[safety.policy.input]\ninsult = 1.5\n", "threshold 1.5 must be between 0 and 1"),
    ("[safety.policy.sideways]\ninsult = 0.5\n", r"\[safety.policy\] unknown key 'sideways'; known keys: input, output"),
    ("[safety.policy.input]\ninsult = true\n", "insult = true: expected a number"),
])
def test_bad_policy_config_is_named(tmp_path: Path, toml: str, match: str) -> None:
    (tmp_path / "appkit.toml").write_text(toml)
    with pytest.raises(ConfigError, match=match) as raised:
        load_policy("support", load_settings())
    assert str(raised.value).startswith(f"{tmp_path / 'appkit.toml'}: ")  # the file is named


def test_load_policy_reports_backend(home_with_checkpoint: Path) -> None:
    policy = load_policy("support")
    assert policy.backend == "trained:tiny" == policy.backend_name
    assert "newest self-trained" in policy.backend_reason
    d = policy.check("shut up you moron", "input")
    assert d.backend == "trained:tiny"
    assert set(d.scores) >= {"toxicity", "insult", "threat", "identity_attack", "obscene"}


def test_toxicity_filter_drops_toxic_training_rows() -> None:
    from appkit.data import Conversation, Turn, curate

    is_toxic = toxicity_filter(threshold=0.5)  # the lexicon here (no model in this APPKIT_HOME)
    assert is_toxic.backend == "lexicon"
    convs = [Conversation("a", [Turn("user", "where is my order"), Turn("assistant", "It ships today.")]),
             Conversation("b", [Turn("user", "you fucking idiots"), Turn("assistant", "Sorry to hear that.")]),
             Conversation("c", [Turn("user", "damn, still waiting"), Turn("assistant", "It ships today.")])]
    kept, report = curate(convs, is_toxic=is_toxic)
    assert [c.id for c in kept] == ["a", "c"] and report.toxic_dropped == 1
    kept, report = curate(convs, is_toxic=is_toxic, toxic="keep")
    assert len(kept) == 3 and report.toxic_kept == 1
    assert is_toxic.checked <= 6  # each distinct text scored once
