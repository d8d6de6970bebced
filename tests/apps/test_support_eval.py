"""`appkit eval --app support`: a trained bot and the retrieval baseline scored on held-out data."""

from __future__ import annotations

import json
import math

from appkit.cli import main


def test_eval_scores_the_bot_and_the_baseline_on_held_out_conversations(capsys, appkit_home, toy_history,
                                                                        support_model_dir, tmp_path):
    out_json = tmp_path / "eval.json"
    code = main(["eval", "--app", "support", "--data", str(toy_history), "--model", str(support_model_dir),
                 "--limit", "12", "--json", str(out_json)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "support on held-out tickets.csv" in out and "retrieval baseline (TF-IDF)" in out
    payload = json.loads(out.strip().splitlines()[-1])
    assert payload == json.loads(out_json.read_text())
    bot, baseline = payload["rows"]
    assert bot["system"] == support_model_dir.name and bot["n"] == baseline["n"] >= 5  # the held-out split, deduplicated
    # Four intents with one canned reply each: a bot that learned them beats chance (25%) by far,
    # and retrieving the nearest training reply is nearly always right.
    assert math.isfinite(bot["perplexity"]) and bot["perplexity"] < 50
    assert baseline["intent_accuracy"] > 0.9 and bot["intent_accuracy"] > 0.5
    assert 0.0 <= bot["rouge_l"] <= 1.0 and baseline["perplexity"] is None


def test_eval_of_an_app_without_evaluation_or_a_missing_model_fails_cleanly(capsys, appkit_home, toy_history):
    code = main(["eval", "--app", "support", "--data", str(toy_history)])
    _, err = capsys.readouterr()
    assert code != 0 and "no support model is trained yet" in err and "Traceback" not in err
    code = main(["eval", "--app", "nope", "--data", str(toy_history)])
    _, err = capsys.readouterr()
    assert code != 0 and "unknown app 'nope'" in err
