"""The BiLSTM blended with the sentiment encoder: it learns, reads unseen words by their pieces, gives the same answer in any batch, saves and loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from appkit.errors import ModelError
from apps.sentiment.words import MAX_WORDS, PAD_ID, UNKNOWN_ID, WEIGHTS_FILE, WordLSTM
from tests.apps.sentiment_data import sentences

LABELS = ("negative", "neutral", "positive")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> WordLSTM:
    """A BiLSTM trained by appkit's training loop on 240 generated sentences, as the sentiment app trains it."""
    import torch

    from apps.sentiment import words
    from apps.sentiment.train import SentimentOptions, fit_classifier

    torch.manual_seed(0)
    rows = sentences(240, seed=0)
    texts, y = [t for t, _ in rows], [LABELS.index(label) for _, label in rows]
    model = WordLSTM.from_texts(texts, len(LABELS))
    options = SentimentOptions(epochs=20, batch_size=words.BATCH_SIZE, ema_decay=0.0, label_smoothing=0.0,
                               progress=False)
    figures = fit_classifier(model, model.encode(texts), y, model.encode(texts[:30]), y[:30], options,
                             lr=words.LEARNING_RATE, pad_id=words.PAD_ID, run_dir=tmp_path_factory.mktemp("run"),
                             budget_minutes=None, title="BiLSTM", ids_per_token=model.slots)
    assert figures["best_accuracy"] >= 0.9 and 0 < figures["best_step"] <= figures["steps"]
    return model.eval()


def test_it_learns_held_out_sentences(trained: WordLSTM) -> None:
    held_out = sentences(90, seed=123)
    predicted = trained.log_probabilities([t for t, _ in held_out]).argmax(axis=1)
    accuracy = sum(LABELS[p] == y for p, (_, y) in zip(predicted, held_out)) / len(held_out)
    assert accuracy >= 0.9  # chance is 1/3


def test_a_text_gets_the_same_probabilities_alone_as_beside_longer_ones(trained: WordLSTM) -> None:
    short = "the staff was rude"
    batch = [short, "honestly i think the delivery was wonderful and the packaging lovely and the price fair today"]
    together = trained.log_probabilities(batch)[0]
    alone = trained.log_probabilities([short])[0]
    assert together.tolist() == pytest.approx(alone.tolist(), abs=1e-6)  # padding must not reach the LSTM


def test_words_unseen_in_training_are_read_through_their_character_ngrams(trained: WordLSTM) -> None:
    # Inflections of the training words: not one is in the vocabulary, so a whole-word model reads each as unknown.
    inflected = {"positive": ["wonderfully", "superbly", "amazingly", "delightfully", "fantastically"],
                 "negative": ["terribly", "awfully", "horribly", "dreadfully", "disappointingly"]}
    assert not set(sum(inflected.values(), [])) & set(trained.vocabulary)
    texts, expected = [], []
    for label, words in inflected.items():
        for word in words:
            texts += [f"the service was {word} good", f"my order arrived {word}"]
            expected += [label, label]
    predicted = [LABELS[i] for i in trained.log_probabilities(texts).argmax(axis=1)]
    assert sum(p == e for p, e in zip(predicted, expected)) / len(texts) >= 0.8


def test_unknown_words_empty_and_overlong_texts_are_read(trained: WordLSTM) -> None:
    ids = trained.encode(["", "zyxwv qwerty", "great " * (MAX_WORDS + 50)])
    slots = trained.slots
    assert ids[0] == [UNKNOWN_ID] + [PAD_ID] * (slots - 1)  # an empty text is one unknown word
    assert len(ids[1]) == 2 * slots and UNKNOWN_ID not in ids[1]  # unknown words: their n-grams alone
    assert len(ids[2]) == MAX_WORDS * slots
    assert trained.log_probabilities(["", "zyxwv"]).shape == (2, 3)


def test_it_survives_a_save_and_load_and_damage_is_a_clear_model_error(trained: WordLSTM, tmp_path: Path) -> None:
    trained.save(tmp_path)
    loaded = WordLSTM.load(tmp_path)
    texts = ["the refund was awful", "my order was great", "the app is normal"]
    assert loaded.log_probabilities(texts).ravel().tolist() == pytest.approx(
        trained.log_probabilities(texts).ravel().tolist(), abs=1e-6)
    assert loaded.vocabulary == trained.vocabulary and not loaded.training

    (tmp_path / WEIGHTS_FILE).write_bytes(b"not safetensors")
    with pytest.raises(ModelError, match="BiLSTM .* cannot be read"):
        WordLSTM.load(tmp_path)
    (tmp_path / WEIGHTS_FILE).unlink()
    with pytest.raises(ModelError, match="cannot be read"):
        WordLSTM.load(tmp_path)


def test_a_file_that_does_not_say_how_it_reads_words_is_refused(trained: WordLSTM, tmp_path: Path) -> None:
    from apps.sentiment.member_io import read_member_file, write_member_file

    trained.save(tmp_path)
    spec, state = read_member_file(tmp_path / WEIGHTS_FILE, "pt")
    write_member_file(tmp_path / WEIGHTS_FILE, state, {k: v for k, v in spec.items() if k != "max_grams"}, "pt")
    with pytest.raises(ModelError, match="BiLSTM .* train the model again"):
        WordLSTM.load(tmp_path)


def test_a_model_that_cut_words_into_other_ngrams_is_refused_not_misread(trained: WordLSTM, tmp_path: Path) -> None:
    from apps.sentiment.member_io import read_member_file, write_member_file

    trained.save(tmp_path)
    spec, state = read_member_file(tmp_path / WEIGHTS_FILE, "pt")
    write_member_file(tmp_path / WEIGHTS_FILE, state, {**spec, "gram_sizes": [2, 3]}, "pt")
    with pytest.raises(ModelError, match="BiLSTM .* n-grams"):
        WordLSTM.load(tmp_path)
