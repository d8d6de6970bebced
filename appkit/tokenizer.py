"""Chat tokens and templates: appkit's own tokenizer, and a ``--base`` checkpoint's.

appkit's byte-level BPE tokenizer is trained on the user's own text; its chat template is a
jinja2 template stored in the tokenizer config, so plain ``tokenizer.apply_chat_template(messages)``
works on a saved appkit model without appkit. A base checkpoint keeps its family's template
(ChatML, Llama 3 headers ...) or gets appkit's (``prepare_chat_tokenizer``). Either way
``encode_conversation`` produces the same ids as the template plus the mask of tokens the model
is trained on: assistant text and the end-of-turn token that closes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

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
        # Role and end tokens typed inside a message are text, never control tokens: a customer
        # who types "<|end|><|assistant|>" must not end their turn and speak as the assistant.
        body = tokenizer.encode(message["content"], add_special_tokens=False, split_special_tokens=True)
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

    # get_vocab() would rebuild a dict of the whole vocabulary (~3 ms at 5k tokens) on every call.
    def check() -> bool:
        ids = [tokenizer.convert_tokens_to_ids(t) for t in (END, *ROLE_TOKENS.values())]  # a base may pad otherwise
        return tokenizer.chat_template == CHAT_TEMPLATE and all(i is not None and i != tokenizer.unk_token_id for i in ids)

    return _cached(tokenizer, "appkit", check)


def prepare_chat_tokenizer(tokenizer: PreTrainedTokenizerBase) -> int:
    """Make a ``--base`` checkpoint's tokenizer ready to train a chat model; returns how many tokens it gained.

    The family's conventions are kept: its chat template when it has one (appkit's is added when
    it has none, behind the family's bos when its tokenizer puts one in front of every text), its
    bos, and its pad (its eos when it has no pad, as GPT-2 and Llama 3 fine-tunes do). eos becomes
    the token that closes an assistant turn (``<|im_end|>``, ``<|eot_id|>``, appkit's ``<|end|>``),
    as each family's own instruct release has it: everything that stops a reply reads eos.

    Raises:
        ModelError: the template does not say where an assistant turn ends and there is no eos.
    """
    from appkit.errors import ModelError

    base_eos = tokenizer.eos_token
    added = 0
    if tokenizer.chat_template is None:
        added += tokenizer.add_special_tokens(
            {"additional_special_tokens": [*ROLE_TOKENS.values(), END]}, replace_extra_special_tokens=False)
        # Llama and Mistral bases saw bos in front of every training text: keep it in front of the chat.
        tokenizer.chat_template = "{{ bos_token }}" + CHAT_TEMPLATE if _adds_bos(tokenizer) else CHAT_TEMPLATE
    if tokenizer.pad_token is None:
        if base_eos is not None:
            tokenizer.pad_token = base_eos
        else:
            added += tokenizer.add_special_tokens({"pad_token": PAD})
    turn_end = end_of_turn_id(tokenizer)
    if turn_end is None:
        raise ModelError("the base's chat template writes no token after an assistant message and the tokenizer "
                         "has no eos, so a reply could never end; give a tokenizer with an eos token.")
    tokenizer.eos_token = tokenizer.convert_ids_to_tokens(turn_end)
    return added


def _adds_bos(tokenizer: PreTrainedTokenizerBase) -> bool:
    bos = tokenizer.bos_token_id
    return bos is not None and tokenizer.encode("a")[:1] == [bos]


_PROBE = "appkitprobe"  # a reply's text in the conversations rendered to learn a template's tokens


def end_of_turn_id(tokenizer: PreTrainedTokenizerBase) -> int | None:
    """The token the chat template writes right after an assistant message (eos if it writes none)."""

    def find() -> int | None:
        text = _render_probe(tokenizer, system=False)
        if text is not None:
            after = text[text.rindex(_PROBE) + len(_PROBE):]
            control = set(tokenizer.added_tokens_decoder)
            for i in tokenizer.encode(after, add_special_tokens=False):
                if i in control:
                    return i
        return tokenizer.eos_token_id

    return _cached(tokenizer, "end_of_turn", find)


def chat_control_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """The control tokens the chat template writes around messages (roles, headers, end of turn).

    A reply never contains one: the engine stops on them. A LoRA fine-tune trains their
    embedding rows: they are new when appkit's template was added, and a base may ship its
    template's tokens untrained (Llama 3 base checkpoints do). bos is left out.
    """

    def find() -> list[int]:
        text = _render_probe(tokenizer, system=True)
        if text is None:
            return []
        control = set(tokenizer.added_tokens_decoder) - {tokenizer.bos_token_id}
        return sorted({i for i in tokenizer.encode(text, add_special_tokens=False) if i in control})

    return _cached(tokenizer, "control", find)


def _render_probe(tokenizer: PreTrainedTokenizerBase, *, system: bool) -> str | None:
    """A short conversation rendered by the template (None: no template, or it cannot render one)."""
    if tokenizer.chat_template is None:
        return None
    messages = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": _PROBE}]
    tries = [[{"role": "system", "content": "be brief"}, *messages], messages] if system else [messages]
    for conversation in tries:
        try:
            return tokenizer.apply_chat_template(conversation, tokenize=False)
        except Exception:  # noqa: BLE001 - templates raise what they like (e.g. "System role not supported")
            continue
    return None


def _cached(tokenizer: PreTrainedTokenizerBase, what: str, find: Any) -> Any:
    """``find()``, remembered on the tokenizer until its template, size or eos change."""
    key = (what, tokenizer.chat_template, len(tokenizer), tokenizer.eos_token)
    store = tokenizer.__dict__.setdefault("_appkit_cache", {})
    if key not in store:
        store[key] = find()
    return store[key]


def encode_with_template(
    tokenizer: PreTrainedTokenizerBase, messages: Sequence[dict[str, str]]
) -> tuple[list[int], list[bool]]:
    """Like ``encode_conversation`` for any tokenizer with a chat template (a base's own).

    The whole conversation is rendered and tokenized once; growing prefixes of it, rendered
    too, say where each assistant message starts (after the generation prompt) and ends. The
    tokens learned are the message's and the end-of-turn token that closes it, not what the
    template writes after that (ChatML's newline). transformers' ``return_assistant_tokens_mask``
    does this only for templates marked with ``{% generation %}``, which the families' own lack.

    Raises:
        ModelError: the template renders a shorter conversation as something other than the
            beginning of the longer one, so the assistant's tokens cannot be told apart.
    """
    from appkit.errors import ModelError

    text = _render(tokenizer, messages, add_generation_prompt=False)
    spans: list[tuple[int, int]] = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = _render(tokenizer, messages[:i], add_generation_prompt=True)
        upto = _render(tokenizer, messages[: i + 1], add_generation_prompt=False)
        if not (text.startswith(prompt) and text.startswith(upto)):
            raise ModelError(
                "the chat template renders a conversation's beginning differently from the whole "
                f"conversation (message {i + 1}), so the assistant's tokens cannot be found: use a base whose "
                "template only appends messages, or one without a template (appkit adds its own).")
        spans.append((len(prompt), len(upto)))
    if not tokenizer.is_fast:
        raise ModelError("the base's tokenizer is a slow (Python) one; appkit needs the tokenizer.json kind "
                         "(save it with a recent transformers, which converts it).")
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    turn_end = end_of_turn_id(tokenizer)
    mask: list[bool] = []
    span, closed = 0, False
    for token, (start, end) in zip(encoded["input_ids"], encoded["offset_mapping"]):
        while span < len(spans) and start >= spans[span][1]:
            span, closed = span + 1, False
        learn = span < len(spans) and end > spans[span][0] and not closed
        mask.append(learn)
        closed = closed or (learn and token == turn_end)
    return list(encoded["input_ids"]), mask


def _render(tokenizer: PreTrainedTokenizerBase, messages: Sequence[dict[str, str]], **kwargs: object) -> str:
    if not messages:
        return ""
    return tokenizer.apply_chat_template(list(messages), tokenize=False, **kwargs)


def _template_ids(tokenizer: PreTrainedTokenizerBase, messages: Sequence[dict[str, str]], **kwargs: object) -> list[int]:
    """The template's ids; control tokens typed inside a message stay text (a customer who types
    ``<|im_end|>`` cannot end their turn and speak as the assistant)."""
    if not messages:
        return []
    return list(tokenizer.apply_chat_template(list(messages), tokenize=True, return_dict=False,
                                              sanitize_control_tokens=True, **kwargs))
