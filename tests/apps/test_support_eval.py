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
    grounded, generated, baseline = payload["rows"]
    assert grounded["system"] == f"{support_model_dir.name} (grounded)"
    assert generated["system"] == f"{support_model_dir.name} (generate)"
    assert grounded["n"] == generated["n"] == baseline["n"] >= 5  # the held-out split, deduplicated
    # Four intents with one canned reply each: a bot that learned them beats chance (25%) by far,
    # and retrieving the nearest training reply is nearly always right.
    assert math.isfinite(generated["perplexity"]) and generated["perplexity"] < 50
    assert baseline["intent_accuracy"] > 0.9 and generated["intent_accuracy"] > 0.5
    assert grounded["intent_accuracy"] >= baseline["intent_accuracy"]
    assert 0.0 <= generated["rouge_l"] <= 1.0 and baseline["perplexity"] is None


def test_eval_scores_exactly_the_conversations_the_model_was_validated_on(appkit_home, toy_history,
                                                                          support_model_dir, tmp_path):
    import csv

    import pytest

    from appkit.config import load_settings
    from appkit.errors import DataError
    from apps.support.bot import SupportBot
    from apps.support.evaluate import recorded_split

    recorded = json.loads((support_model_dir / "split.json").read_text())
    bot = SupportBot.open(model=str(support_model_dir), settings=load_settings(), policy=None)
    try:
        train, val = recorded_split(toy_history, [bot])
        assert [c.id for c in val] == recorded["validation"]
        assert [c.id for c in train] == recorded["train"]
        # Another history is refused, not split again into something the model may have learned.
        other = tmp_path / "other.csv"
        with toy_history.open() as f:
            rows = list(csv.DictReader(f))[:20]
        with other.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        with pytest.raises(DataError, match="validated on are not in this file"):
            recorded_split(other, [bot])
    finally:
        bot.close()


def test_eval_of_an_app_without_evaluation_or_a_missing_model_fails_cleanly(capsys, appkit_home, toy_history):
    code = main(["eval", "--app", "support", "--data", str(toy_history)])
    _, err = capsys.readouterr()
    assert code != 0 and "no support model is trained yet" in err and "Traceback" not in err
    code = main(["eval", "--app", "nope", "--data", str(toy_history)])
    _, err = capsys.readouterr()
    assert code != 0 and "unknown app 'nope'" in err
