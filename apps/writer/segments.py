"""Articles -> training examples: brief in, article out, a context-sized part at a time.

The CPU model's context (512 tokens for ``tiny``) holds ~350 words of article after the brief;
the median 18F post is 850 words. Rather than cut every article after its first part (the
model would never see how articles go on or end) each article is split, at paragraph breaks
where it can be (then sentence ends, then spaces), into parts that fit:

    part 1:  brief                                             -> text of part 1
    part k:  brief + "written so far: N words, ending with: …" -> text of part k  (+ end-of-text if last)

Only the last part ends with the end-of-text token, so the model learns to stop where
articles stop (near the brief's length), and never at an arbitrary cut. The writer prompts a
long draft the same way, part after part (apps/writer/draft.py), so training and writing agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from apps.writer.brief import TAIL_WORDS, Brief, brief_messages, count_words, last_words

if TYPE_CHECKING:
    from appkit.prompts import Prompts
    from appkit.train.packing import Example
    from apps.writer.articles import Article

MIN_PART_TOKENS = 32  # a context that leaves less than this after the prompt is too small to write in
# A piece ends after a paragraph break, a line break, or a sentence end followed by space.
_PIECE = re.compile(r".*?(?:\n\s*\n|\n|[.!?\u2026]+[\"'”’)\]*_]*[ \t]+|$)", re.S)


def pieces(text: str) -> list[str]:
    """``text`` cut after paragraph breaks, line breaks and sentence ends; joined, they are ``text``."""
    return [p for p in _PIECE.findall(text) if p]


def article_parts(article: Article, brief: Brief, tokenizer: Any, prompts: Prompts,
                  context: int) -> Iterator[tuple[list[int], list[int], bool]]:
    """(prompt ids, text ids, is last part) for each part of ``article`` that fits ``context``."""
    from appkit.tokenizer import generation_prompt_ids

    todo = pieces(article.text)
    done = ""
    while todo:
        found = part_prompt(tokenizer, prompts, brief, done, context)
        if found is None:
            return  # a brief this long leaves no room: the rest of this article is not learned
        prompt = generation_prompt_ids(tokenizer, found)
        budget = context - len(prompt) - 1  # one for the end-of-text token
        taken: list[str] = []
        used = 0
        while todo:
            n = len(tokenizer.encode(todo[0], add_special_tokens=False))
            if used + n <= budget:
                taken.append(todo.pop(0))
                used += n
                continue
            if not taken:  # one piece longer than a part: cut it between words
                head, rest = _split_words(todo[0], tokenizer, budget)
                taken.append(head)
                todo[0] = rest
            break
        text = "".join(taken)
        ids = tokenizer.encode(text.strip(), add_special_tokens=False)[:budget]
        done += text
        yield prompt, ids, not todo


def part_prompt(tokenizer: Any, prompts: Prompts, brief: Brief, done: str, context: int) -> list[dict[str, str]] | None:
    """The messages that prompt the next part: the brief, and after the first part the text so far.

    The end of the text so far is repeated (40 words, or 20, 10, none) so that the part keeps
    at least a third of the context to write in; None when even the bare brief leaves too little.
    """
    from appkit.tokenizer import generation_prompt_ids

    written = count_words(done)
    tails = (TAIL_WORDS, TAIL_WORDS // 2, TAIL_WORDS // 4) if done else ()
    for n, room in [*((n, max(MIN_PART_TOKENS, context // 3)) for n in tails), (0, MIN_PART_TOKENS)]:
        messages = brief_messages(prompts, brief, written=written, tail=last_words(done, n) if n else "")
        if context - len(generation_prompt_ids(tokenizer, messages)) - 1 >= room:
            return messages
    return None


def encode_article(article: Article, tokenizer: Any, prompts: Prompts, context: int,
                   brief: Brief | None = None) -> list[Example]:
    """The training examples of one article: every part, loss on the article's tokens only."""
    from appkit.train.packing import IGNORE, Example

    brief = brief or article.brief()
    out = []
    for prompt, ids, last in article_parts(article, brief, tokenizer, prompts, context):
        target = [*ids, tokenizer.eos_token_id] if last else ids
        if target:
            out.append(Example([*prompt, *target], [IGNORE] * len(prompt) + target))
    return out


def encode_articles(articles: Sequence[Article], tokenizer: Any, prompts: Prompts, context: int) -> list[Example]:
    """``encode_article`` for every article."""
    return [ex for a in articles for ex in encode_article(a, tokenizer, prompts, context)]


def tokens_per_word(articles: Sequence[Article], tokenizer: Any) -> float:
    """Tokens per counted word of these articles: turns a word target into token budgets."""
    texts = [a.text for a in articles]
    tokens = sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]) if texts else 0
    words = sum(count_words(t) for t in texts)
    return tokens / words if words else 1.5


def _split_words(text: str, tokenizer: Any, budget: int) -> tuple[str, str]:
    """(the longest run of whole words of ``text`` within ``budget`` tokens, the rest)."""
    words = re.findall(r"\S+\s*", text)
    lo, hi = 1, len(words)
    while lo < hi:  # the most words that fit, by bisection (a piece can be thousands of words)
        mid = (lo + hi + 1) // 2
        if len(tokenizer.encode("".join(words[:mid]), add_special_tokens=False)) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return "".join(words[:lo]), "".join(words[lo:])
