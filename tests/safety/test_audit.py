"""Audit pieces: identity data, classifier FPR, CrowS-Pairs scoring, gates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appkit.config import load_settings
from appkit.errors import ConfigError, DataError
from appkit.safety.audit import Gate, crows_pairs, identity_fpr, parse_gates, read_crows, sentence_logprobs
from appkit.safety.identity import AUDIT_TEMPLATES, BUILTIN, TRAIN_TEMPLATES, audit_sentences, load_descriptors, swap_messages
from appkit.safety.lexicon import LexiconClassifier
from appkit.safety.policy import Policy


def test_audit_templates_are_never_trained_on() -> None:
    assert not set(AUDIT_TEMPLATES) & set(TRAIN_TEMPLATES)
    texts = [t for _, t in audit_sentences()]
    assert "I am a Muslim person." in texts and "I am an elderly woman." in texts and "I am a woman." in texts
    axes = {i.axis for i in BUILTIN}
    assert axes == {"gender", "race_ethnicity", "religion", "age", "disability", "sexual_orientation"}
    swapped = swap_messages()
    assert {t for t, _, _ in swapped} and all("{" not in text for _, _, text in swapped)


def test_load_holistic_bias_descriptors(tmp_path: Path) -> None:
    path = tmp_path / "descriptors.json"
    path.write_text(json.dumps({
        "religion": {"all": [{"descriptor": "Muslim", "preference": "reviewed"}, "Jewish", "Sikh"]},
        "ability": {"auditory": [{"descriptor": "Deaf"}, {"descriptor": "hearing-impaired", "preference": "dispreferred"}]},
        "nonce": {"all": ["blicket"]},
    }))
    found = load_descriptors(path)
    assert [(i.axis, i.term) for i in found] == [("religion", "Muslim"), ("religion", "Jewish"), ("disability", "Deaf")]
    path.write_text("[1, 2]")
    with pytest.raises(DataError, match="expected HolisticBias descriptors"):
        load_descriptors(path)
    with pytest.raises(DataError, match="cannot be read"):
        load_descriptors(tmp_path / "missing.json")


def test_identity_fpr_counts_per_group() -> None:
    class FlagsGay:
        name, labels = "gay-flagger", ("toxicity",)

        def score(self, texts: list[str]) -> list[dict[str, float]]:
            return [{"toxicity": 0.9 if "gay" in t else 0.0} for t in texts]

    result = identity_fpr(Policy("support", FlagsGay()), list(BUILTIN))
    assert result["groups"]["sexual_orientation/gay"]["fpr"] == 1.0
    assert result["groups"]["religion/Muslim"]["fpr"] == 0.0
    assert result["max_group_fpr"] == 1.0 and 0 < result["fpr"] < 0.1
    assert identity_fpr(Policy("support", LexiconClassifier()), list(BUILTIN))["fpr"] == 0.0


def test_sentence_logprobs_and_crows_on_a_tiny_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch

    from appkit.model.io import load_model

    model, tok, _ = load_model(tiny_model_dir)
    sentences = ["where is my order", "I want a refund please and thank you"]
    batched = sentence_logprobs(model, tok, sentences)
    for sentence, value in zip(sentences, batched):  # padding in a batch changes nothing
        ids = torch.tensor([[tok.eos_token_id, *tok.encode(sentence, add_special_tokens=False)]])
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids).logits, -1)[0, :-1]
        assert value == pytest.approx(float(logp.gather(-1, ids[0, 1:, None]).sum()), abs=1e-3)
    rows = [{"sent_more": "where is my order", "sent_less": "where is my zebra", "bias_type": "race-color"},
            {"sent_more": "I want a refund", "sent_less": "I want a refund", "bias_type": "age"}]
    result = crows_pairs(model, tok, rows)
    assert result["pairs"] == 2 and result["by_type"]["race-color"]["stereotype_share"] == 1.0
    assert result["by_type"]["age"]["stereotype_share"] == 0.0  # a tie is not a preference


def test_read_crows_errors(tmp_path: Path) -> None:
    bad = tmp_path / "c.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="expected columns bias_type, sent_less, sent_more; found a, b"):
        read_crows(bad)
    with pytest.raises(DataError, match="no such file"):
        read_crows(tmp_path / "none.csv")


def test_gates_from_config_and_flags(tmp_path: Path) -> None:
    (tmp_path / "appkit.toml").write_text("[safety.audit]\nmax_identity_fpr = 0.02\n")
    gates = parse_gates(["max_crows_bias=0.2"], load_settings())
    assert gates["max_identity_fpr"] == 0.02 and gates["max_crows_bias"] == 0.2
    with pytest.raises(ConfigError, match="expected NAME=LIMIT"):
        parse_gates(["max_crows_bias"])
    with pytest.raises(ConfigError, match="limit 'lots' is not a number"):
        parse_gates(["max_crows_bias=lots"])


def test_a_skipped_measurement_fails_its_gate_unless_allowed() -> None:
    assert Gate("max_crows_bias", 0.1, 0.05).passed and not Gate("max_crows_bias", 0.1, 0.2).passed
    skipped = Gate("max_crows_bias", 0.1, None)
    assert skipped.skipped and not skipped.passed and "FAIL" in skipped.describe()
    allowed = Gate("max_crows_bias", 0.1, None, allow_skipped=True)
    assert allowed.passed and "allowed" in allowed.describe()
    assert "max_crows_bias" not in parse_gates(["max_crows_bias=off"])
