"""Byte-level BPE tokenizer trained on the user's own text, with chat special tokens.

The chat template is a jinja2 template stored in the tokenizer config, so plain
``tokenizer.apply_chat_template(messages)`` works on a saved appkit model without appkit.
``encode_conversation`` produces exactly the same ids as that template (a test checks it)
plus the mask of tokens the model is trained on: assistant text and its end-of-turn token.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

PAD = "<|pad|>"
END = "<|end|>"  # end of turn; also the tokenizer's eos so generation stops on it
ROLE_TOKENS = {"system": "<|system|>", "user": "<|user|>", "assistant": "<|assistant|>"}
SPECIAL_TOKENS = [PAD, END, *ROLE_TOKENS.values()]

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|assistant|>' }}{%- endif -%}"
)

MIN_VOCAB = 512
MAX_VOCAB = 16384


def vocab_size_for(n_chars: int) -> int:
    """A vocabulary size suited to ``n_chars`` of training text.

    About one merge per 128 characters: small corpora get small vocabularies (a 200 KB sample
    history -> ~1.5k, so each token is seen often enough to learn), large ones saturate at 16k,
    which keeps the embedding a small share of a CPU-sized model. Rounded to 64 for matmul tiles.
    """
    size = max(MIN_VOCAB, min(MAX_VOCAB, n_chars // 128))
    return (size + 63) // 64 * 64


def train_tokenizer(texts: Iterable[str], vocab_size: int | None = None) -> PreTrainedTokenizerBase:
    """Train a byte-level BPE tokenizer on ``texts`` and wrap it for transformers.

    Args:
        texts: the training text (materialized once to size the vocabulary when needed).
        vocab_size: target size including special tokens; chosen from the data when None.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    corpus = list(texts)
    if vocab_size is None:
        vocab_size = vocab_size_for(sum(len(t) for t in corpus))
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        # Every byte is in the vocabulary, so any input (emoji, other scripts) encodes losslessly.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(corpus, trainer=trainer)
    return wrap_tokenizer(core)


def wrap_tokenizer(core: object) -> PreTrainedTokenizerBase:
    """Wrap a ``tokenizers.Tokenizer`` with appkit's special tokens and chat template."""
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token=END,
        pad_token=PAD,
        additional_special_tokens=list(ROLE_TOKENS.values()),
        model_max_length=1_000_000,
        padding_side="left",  # generation batches are left-padded
        clean_up_tokenization_spaces=False,
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def encode_conversation(
    tokenizer: PreTrainedTokenizerBase, messages: Sequence[dict[str, str]]
) -> tuple[list[int], list[bool]]:
    """Token ids of ``messages`` as the chat template renders them, and the loss mask.

    The mask is True on assistant content and on the end-of-turn token that closes it: the model
    learns what to say and when to stop, never the user's words. Special tokens split the text,
    so encoding segment by segment gives the same ids as encoding the rendered string.
    """
    if not is_appkit_tokenizer(tokenizer):
        return encode_with_template(tokenizer, messages)
    end_id = tokenizer.convert_tokens_to_ids(END)
    ids: list[int] = []
    mask: list[bool] = []
    for message in messages:
        role = message["role"]
        role_id = tokenizer.convert_tokens_to_ids(ROLE_TOKENS[role])
        body = tokenizer.encode(message["content"], add_special_tokens=False)
        learn = role == "assistant"
        ids += [role_id, *body, end_id]
        mask += [False] + [learn] * (len(body) + 1)
    return ids, mask


def generation_prompt_ids(tokenizer: PreTrainedTokenizerBase, messages: Sequence[dict[str, str]]) -> list[int]:
    """Ids of ``messages`` followed by the assistant role token, ready for generation."""
    if not is_appkit_tokenizer(tokenizer):
        return _template_ids(tokenizer, messages, add_generation_prompt=True)
    ids, _ = encode_conversation(tokenizer, messages)
    return ids + [tokenizer.convert_tokens_to_ids(ROLE_TOKENS["assistant"])]


def is_appkit_tokenizer(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether ``tokenizer`` carries appkit's role tokens and chat template."""
    # get_vocab() rebuilds a dict of the whole vocabulary (~3 ms at 5k tokens); the answer is
    # cached on the tokenizer, keyed by what could change it (template and size).
    key = (tokenizer.chat_template, len(tokenizer))
    cached = getattr(tokenizer, "_appkit_checked", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    ids = [tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS]
    answer = tokenizer.chat_template == CHAT_TEMPLATE and all(
        i is not None and i != tokenizer.unk_token_id for i in ids)
    tokenizer._appkit_checked = (key, answer)
    return answer


def add_chat_tokens(tokenizer: PreTrainedTokenizerBase) -> int:
    """Give a foreign tokenizer appkit's chat tokens and template; returns how many tokens were added.

    Used for a ``--base`` checkpoint that has no chat template of its own.
    """
    added = tokenizer.add_special_tokens(
        {"additional_special_tokens": list(ROLE_TOKENS.values()) + [END]}, replace_extra_special_tokens=False
    )
    if tokenizer.pad_token is None:
        added += tokenizer.add_special_tokens({"pad_token": PAD})
    tokenizer.eos_token = END
    tokenizer.chat_template = CHAT_TEMPLATE
    return added


def encode_with_template(
    tokenizer: PreTrainedTokenizerBase, messages: Sequence[dict[str, str]]
) -> tuple[list[int], list[bool]]:
    """Like ``encode_conversation`` for any tokenizer with a chat template.

    Renders growing prefixes of the conversation: the tokens an assistant message adds after
    the generation prompt are the ones to learn. Slower, but template-agnostic.
    """
    ids: list[int] = []
    mask: list[bool] = []
    for i, message in enumerate(messages):
        if message["role"] == "assistant":
            prompt = _template_ids(tokenizer, messages[:i], add_generation_prompt=True)
            mask += [False] * (len(prompt) - len(ids))
            ids = prompt
        full = _template_ids(tokenizer, messages[: i + 1], add_generation_prompt=False)
        mask += [message["role"] == "assistant"] * (len(full) - len(ids))
        ids = full
    return ids, mask


def _template_ids(tokenizer: PreTrainedTokenizerBase, messages: Sequence[dict[str, str]], **kwargs: object) -> list[int]:
    if not messages:
        return []
    text = tokenizer.apply_chat_template(list(messages), tokenize=False, **kwargs)
    return tokenizer.encode(text, add_special_tokens=False)
