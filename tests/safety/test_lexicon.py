"""The lexicon floor: leetspeak, word boundaries, phrases, masking, user word lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from appkit.errors import ConfigError
from appkit.safety.lexicon import LABELS, Lexicon, LexiconClassifier


@pytest.fixture(scope="module")
def lex() -> Lexicon:
    return Lexicon.builtin()


@pytest.mark.parametrize("text", ["a$$", "sh1t happens", "f*ck this", "what the f**k", "fuuuuuck", "f.u.c.k",
                                  "s h i t", "$hit", "sh!t.", "FUCKING", "ｆｕｃｋ", "fück", "b1tch", "@sshole"])
def test_leetspeak_and_disguises_are_caught(lex: Lexicon, text: str) -> None:
    assert lex.scores(text)["toxicity"] >= 0.5, text


@pytest.mark.parametrize("text", [
    "Scunthorpe", "I live in Scunthorpe and Penistone", "an assassin", "first class passage", "a cocktail",
    "my therapist", "Charles Dickens", "Middlesex and Essex", "spicy food", "I pricked my finger",
    "Samsung A55, order 455", "shiitake mushrooms", "the grass is green", "hello", "Arsenal won",
])
def test_no_scunthorpe_false_positives(lex: Lexicon, text: str) -> None:
    assert lex.scores(text)["toxicity"] == 0.0, (text, lex.hits(text))


def test_phrases_name_their_label(lex: Lexicon) -> None:
    assert lex.scores("I will kill you")["threat"] >= 0.9
    assert lex.scores("i know where u live")["threat"] >= 0.9
    assert lex.scores("you are such an incompetent clown")["insult"] >= 0.8
    assert lex.scores("all immigrants are vermin")["identity_attack"] >= 0.9
    assert lex.scores("You are a f*cking idiot")["insult"] > 0.9  # the spelled-out word completes the phrase
    assert lex.scores("I am a gay Muslim woman")["toxicity"] == 0.0


def test_mild_words_stay_below_the_default_threshold(lex: Lexicon) -> None:
    assert 0 < lex.scores("damn, this is a crappy app")["toxicity"] < 0.6
    assert lex.scores("damn")["toxicity"] < 0.5


def test_mask_replaces_whole_words_keeping_length(lex: Lexicon) -> None:
    masked, n = lex.mask("shit, your order is late. F*ck!")
    assert masked == "****, your order is late. ****!"
    assert n == 2
    assert lex.mask("no problem at all") == ("no problem at all", 0)
    assert lex.scores(masked)["toxicity"] == 0.0  # a masked word does not match again


def test_classifier_contract(lex: Lexicon) -> None:
    clf = LexiconClassifier(lex)
    assert clf.score([]) == []
    [one] = clf.score(["hello"])
    assert set(one) == set(LABELS) and all(isinstance(v, float) for v in one.values())
    odd = clf.score(["", "😀😀😀", "Das ist wirklich großartig", "これはテストです", "x" * 100_000 + " fuck"])
    assert len(odd) == 5
    assert odd[0]["toxicity"] == odd[1]["toxicity"] == odd[2]["toxicity"] == odd[3]["toxicity"] == 0.0
    assert odd[4]["obscene"] > 0.5


def test_word_list_file(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"
    path.write_text("# my words\nfrobnicate\nblue waffle,obscene,0.9\nzorp,threat\n")
    lex = Lexicon.from_file(path)
    assert lex.scores("you frobnicates")["obscene"] >= 0.8
    assert lex.scores("a BLUE  waffle")["obscene"] >= 0.9
    assert lex.scores("zorp")["threat"] > 0
    assert lex.scores("fuck")["obscene"] > 0  # built-in terms are kept
    only = Lexicon.from_file(path, include_builtin=False)
    assert only.scores("fuck")["obscene"] == 0.0


def test_word_list_errors_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("ok\nword,rude\n")
    with pytest.raises(ConfigError, match=r"line 2: label 'rude'"):
        Lexicon.from_file(bad)
    bad.write_text("word,obscene,lots\n")
    with pytest.raises(ConfigError, match="line 1: severity 'lots'"):
        Lexicon.from_file(bad)
    with pytest.raises(ConfigError, match="cannot be read"):
        Lexicon.from_file(tmp_path / "missing.txt")
