"""The writer app on a real nano model trained by `appkit train-writer` on a generated blog."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appkit.apps import load_app
from appkit.data import Document, read_corpus
from appkit.errors import ConfigError, SafetyError
from apps.writer.articles import article_from, articles_from, holdout_split
from apps.writer.brief import count_words, make_brief
from apps.writer.length import DraftText, LengthPlan
from tests.apps.writer_fixtures import MODEL, writer_corpus, writer_home, writer_settings  # noqa: F401


@pytest.fixture
def writer(writer_settings):
    w = load_app("writer", settings=writer_settings, policy=None)
    yield w
    w.close()


# -- articles, briefs and parts (no model) -----------------------------------------------------


def test_articles_take_title_tags_date_and_a_format_from_front_matter_or_the_text(writer_corpus):
    docs, _ = read_corpus(writer_corpus)
    articles, short = articles_from(docs)
    assert len(articles) == 30 and short == 0
    by_id = {a.id: a for a in articles}
    plain = by_id["2020-01-04-post-3"]  # no front matter: first heading and file-name date
    assert plain.title == "How we do procurement 3" and str(plain.date) == "2020-01-04" and plain.tags == ()
    undated = by_id["2020-01-01-post-0"]  # front matter without date
    assert str(undated.date) == "2020-01-01" and undated.tags == ("user research", "how we work")
    assert all("{%" not in a.text for a in articles)  # site-generator tags are not the brand's voice
    assert {a.brief().format for a in articles} == {"social", "blog"}
    assert all(a.brief().words % 10 == 0 for a in articles)
    rest, newest = holdout_split(articles, 0.1)
    assert [a.id for a in newest] == ["2020-01-28-post-27", "2020-02-01-post-28", "2020-02-02-post-29"]
    assert len(rest) == 27


def test_liquid_links_keep_their_target_and_short_documents_are_not_articles():
    doc = Document("x", 'See [us]({{ "/about/" | url }}). {% include x.html %}Done.', "x.md", {"title": "T"})
    assert article_from(doc, keep_links=True).text == "See [us](/about/). Done."
    assert article_from(doc).text == "See us. Done."
    with pytest.raises(Exception, match="no usable article"):
        articles_from([Document("a", "too short", "posts/a.md")])


def test_links_keep_their_words_and_lose_addresses_images_and_html():
    body = (
        'Read [our guide](https://example.com/a-b-c "Guide") at https://x.io/y.\n'
        "![team photo](/img/team.png)\n"
        "See <https://github.com/18f/notalone> and [the docs][1].<br>\n"
        '<div class="embed"><iframe src="//speakerdeck.com/p/1"></iframe></div>\n\n'
        "[1]: https://docs.example.com\n"
        "Email [us](mailto:team@example.gov) or visit www.example.gov. Keep **this** and a < b > c."
    )
    text = article_from(Document("x", body, "x.md", {"title": "T"})).text
    for gone in ("http", "www.", "mailto", ".png", "<br>", "iframe", "div", "](", "[1]"):
        assert gone not in text
    for kept in ("Read our guide at", "See and the docs.", "Email us or visit.", "Keep **this** and a < b > c."):
        assert kept in text
    assert article_from(Document("x", body, "x.md", {"title": "T"}), keep_links=True).text.count("https://") == 4


def test_word_counts_ignore_link_targets_urls_and_markup():
    assert count_words("Read [our guide](https://example.com/a-b-c) at https://x.io/y now.") == 5
    assert count_words("## Why we ship\n\n- don't wait\n- ship **small**") == 7


@pytest.mark.parametrize("kwargs, message", [
    ({"title": "  "}, "title is empty"),
    ({"title": "T", "format": "poem"}, "unknown format 'poem'"),
    ({"title": "T", "words": 0}, "--words 0"),
    ({"title": "T", "words": -5}, "--words -5"),
    ({"title": "T", "words": 100_000}, "--words 100000"),
])
def test_bad_briefs_are_clear_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        make_brief(**kwargs)


def test_draft_text_ends_at_a_sentence_past_the_target_and_never_past_120_percent():
    d = DraftText(LengthPlan(20))
    out = "".join(d.feed(p) for p in ["One two three four five. ", "Six seven eight nine ten eleven twelve. ",
                                      "Thirteen fourteen fifteen sixteen seventeen. ", "Eighteen nineteen twenty "
                                      "twenty-one twenty-two twenty-three twenty-four twenty-five. More."])
    # 17 words accepted; the next sentence would reach 25 > 24 (120%): left out, since 17 >= 16 (80%).
    assert d.done and d.words == 17 and out.strip().endswith("seventeen.")
    run_on = DraftText(LengthPlan(20))
    text = run_on.feed("word " * 40)  # no sentence end at all: cut at the target, marked as cut
    assert run_on.done and run_on.words == 20 and text.endswith("…")
    early = DraftText(LengthPlan(20))
    early.feed("Only five words here now. ")
    assert early.end_part("end_of_turn") == "" and not early.done  # short of 80%: keep writing


def test_a_wrapped_line_is_not_a_place_to_end_a_draft():
    d = DraftText(LengthPlan(10))
    out = "".join(d.feed(p) for p in ["Alpha beta gamma delta. ", "One two three four five six\n", "seven. More words."])
    assert d.done and out.strip().endswith("six\nseven.") and d.words == 11  # not at "six", mid-sentence
    listed = DraftText(LengthPlan(6))
    out = "".join(listed.feed(p) for p in ["## Why\n\n", "- ship small things\n", "- test with users\n- more"])
    assert listed.done and out.strip().endswith("- test with users")  # a list item is a whole unit


def test_parts_cover_the_article_and_only_the_last_part_ends_the_text(writer_settings):
    from appkit.model.io import load_model
    from appkit.prompts import prompts_for
    from appkit.train.packing import IGNORE
    from apps.writer.segments import encode_article

    _, tok, _ = load_model(_model_dir(writer_settings))
    body = " ".join(f"Sentence number {i} is here." for i in range(120))
    article = article_from(Document("long", body, "long.md", {"title": "A long one"}))
    examples = encode_article(article, tok, prompts_for(writer_settings), 128)
    assert len(examples) > 3 and all(len(e.ids) <= 128 for e in examples)
    ends = [e.ids[-1] == tok.eos_token_id for e in examples]
    assert ends == [False] * (len(examples) - 1) + [True]
    learned = " ".join(tok.decode([t for t in e.labels if t != IGNORE], skip_special_tokens=True) for e in examples)
    assert count_words(learned) == count_words(body)
    assert "Written so far" in tok.decode(examples[1].ids)


def _model_dir(settings) -> Path:
    from appkit.models import resolve_model_path

    return resolve_model_path("writer", None, settings)[1]


# -- the trained writer ------------------------------------------------------------------------


def test_training_recorded_the_brief_template_the_held_out_posts_and_tokens_per_word(writer_home):
    meta = json.loads((writer_home / "models" / MODEL / "appkit.json").read_text())
    assert meta["app"] == "writer"
    w = meta["writer"]
    assert w["holdout_ids"] == ["2020-01-28-post-27", "2020-02-01-post-28", "2020-02-02-post-29"]
    assert w["template"] == "writer/brief.j2" and len(w["template_version"]) == 12
    assert 1.0 < w["tokens_per_word"] < 3.0


def test_write_returns_a_stored_markdown_draft_with_its_brief_model_and_template(writer):
    draft = writer.write(title="Why we test with users", format="blog", tone="friendly", words=60, seed=1)
    assert draft.text.startswith("# Why we test with users\n\n") and draft.words == count_words(draft.text.split("\n\n", 1)[1])
    doc = writer.store.get_document(draft.document_id)
    assert doc.app == "writer" and doc.content == draft.text and doc.model_name == MODEL
    assert doc.template_name == "writer/brief.j2" and len(doc.template_version) == 12
    assert doc.brief["title"] == "Why we test with users" and doc.brief["tone"] == "friendly"
    assert doc.brief["words"] == 60 and doc.brief["result"]["words"] == draft.words


def test_stream_yields_the_draft_piece_by_piece(writer):
    stream = writer.stream(title="Open source at work", words=40, seed=2)
    pieces = list(stream)
    assert len(pieces) > 2 and "".join(pieces) == stream.draft.text


def test_length_lands_within_25_percent_for_every_brief(writer):
    from concurrent.futures import ThreadPoolExecutor

    briefs = [(t, f) for t in (30, 60, 120, 250) for f in ("blog", "social")]

    def write(i):
        target, fmt = briefs[i]
        return target, writer.write(title=f"How we plan {i}", format=fmt, words=target, seed=i, store=False)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(write, range(len(briefs))))
    for target, draft in results:
        assert abs(draft.words - target) <= 0.25 * target, (target, draft.words, draft.text)
    assert max(d.parts for _, d in results) > 1  # 250 words do not fit the nano context: written in parts


def test_variants_differ_and_each_is_stored(writer):
    drafts = writer.write(title="Small releases", words=40, variants=3)
    assert len({d.text for d in drafts}) == 3
    assert len({d.document_id for d in drafts}) == 3
    assert len(writer.store.list_documents(app="writer")) == 3


def test_a_stopped_draft_is_not_stored(writer):
    stream = writer.stream(title="Stopping early", words=200)
    for i, _ in enumerate(stream):
        if i == 2:
            break
    assert stream.draft is None and writer.store.list_documents(app="writer") == []


def test_the_safety_policy_refuses_a_toxic_brief_and_records_every_decision(writer_settings):
    w = load_app("writer", settings=writer_settings)  # the default policy (lexicon here: nothing cached)
    try:
        with pytest.raises(SafetyError, match="refused this brief"):
            w.write(title="I will kill you all", words=40)
        assert w.store.list_documents(app="writer") == []
        draft = w.write(title="Why we pair", words=40, seed=3)
        assert draft.safety == "allow" and w.store.get_document(draft.document_id).brief["result"]["safety"] == "allow"
        events = w.store.moderation_events(app="writer")
        assert [(e.direction, e.action) for e in reversed(events)] == [
            ("input", "escalate"), ("input", "allow"), ("output", "allow")]
    finally:
        w.close()


def test_a_blocked_draft_shows_the_writer_notice_instead(writer_settings, appkit_home):
    (appkit_home / "appkit.toml").write_text("[safety.apps.writer.policy.output]\ntoxicity = 0.0\n", encoding="utf-8")
    from appkit.config import load_settings

    w = load_app("writer", settings=load_settings())
    try:
        draft = w.write(title="Why we pair", words=40, seed=4)
        assert draft.safety == "block" and "withheld by the safety policy" in draft.text
    finally:
        w.close()


def test_evaluation_reports_brand_and_other_voice_perplexity_and_length_control(writer_settings, writer_corpus, tmp_path):
    from apps.writer.evaluate import evaluate_writer

    other = tmp_path / "other.txt"
    other.write_text("\n\n".join(
        f"KING {i}:\nO thou wretched knave, the moon doth weep upon thy crown tonight.\nAway, away!" for i in range(60)),
        encoding="utf-8")
    table = evaluate_writer(writer_corpus, [None], writer_settings, other=other, briefs=8)
    row = table.data["rows"][0]
    assert row["system"] == MODEL and row["held_out"] == 3 and row["briefs"] == 8
    assert row["brand_perplexity"] < row["other_perplexity"]
    assert row["within_25"] == 1.0 and row["mean_abs_error"] < 0.25
    assert table.columns[0] == "system" and len(table.rows) == 1
