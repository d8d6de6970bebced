"""The figures a run reports are measured or absent, never made up, and a diverged run saves nothing."""

from __future__ import annotations

import pytest

from appkit.errors import TrainingError
from appkit.train.loop import TrainConfig, Trainer
from tests.core.test_training import _datasets
from tests.test_cli import run


def test_a_run_without_validation_data_has_no_validation_figure(toy_history, tmp_path):
    model, train, _ = _datasets(toy_history)
    cfg = TrainConfig(batch_size=4, max_steps=5, progress=False)
    result = Trainer(model, train, None, cfg, tmp_path).run()
    assert result.steps == 5
    assert result.best_val_loss is None and result.val_perplexity is None


def test_pretraining_one_short_document_lists_no_perplexity(capsys, appkit_home, tmp_path):
    # One document: the split leaves nothing to validate on. The model is still trained and
    # registered, but `models list` must not show a perplexity it never measured (it showed 1.00).
    corpus = tmp_path / "one.txt"
    corpus.write_text("Our shop sells coffee beans and tea, roasted every week. " * 30)
    code, out, err = run(capsys, "pretrain", "--corpus", str(corpus), "--preset", "nano", "--max-steps", "5",
                         "--name", "one-doc")
    assert code == 0, err
    assert "no validation figure" in out
    code, out, _ = run(capsys, "models", "list")
    row = next(line for line in out.splitlines() if line.split()[:1] == ["one-doc"])
    assert "ppl" not in row and " - " in row


def test_a_diverging_run_stops_naming_the_step_and_promotes_nothing(capsys, appkit_home, toy_history):
    code, out, err = run(capsys, "train-support", "--history", str(toy_history), "--preset", "nano",
                         "--max-steps", "30", "--batch-size", "4", "--learning-rate", "1e30", "--name", "diverged")
    assert code == 1
    assert "training loss became nan at step" in err and "--learning-rate" in err and "Traceback" not in err
    assert not (appkit_home / "models" / "diverged").exists()
    code, out, _ = run(capsys, "models", "list")
    assert code == 0 and "diverged" not in out

    from appkit.config import load_settings
    from appkit.store import open_store

    with open_store(load_settings()) as store:
        assert store.active_model("support") is None
        assert [r.status for r in store.list_runs("support")] == ["failed"]


def test_a_validation_loss_that_is_not_finite_stops_the_run(toy_history, tmp_path):
    # A training step's loss is computed before its update blows the weights up, so the
    # validation after every step is the first to see the damage.
    model, train, val = _datasets(toy_history)
    cfg = TrainConfig(batch_size=4, learning_rate=1e30, warmup_steps=1, max_steps=20, eval_every=1, progress=False)
    with pytest.raises(TrainingError, match=r"the validation loss became (nan|inf) at step \d+:"):
        Trainer(model, train, val, cfg, tmp_path).run()
