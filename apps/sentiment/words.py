"""A bidirectional LSTM over words and their character n-grams, blended with the encoder (blend.py).

Why beside a transformer: trained from scratch on a few thousand sentences, recurrence over
words is the better inductive bias, and its mistakes differ from the encoder's and the
n-grams'. The design is the plain one that works on sentence classification (Conneau et al.
2017's BiLSTM-max): word vectors, one bidirectional LSTM layer, max-pooling over the words, a
linear layer; dropout 0.5 on the word vectors and the pooled vector.

Words are lower-cased words and punctuation marks (the n-gram model's tokens), the commonest
MAX_VOCABULARY in training. A word's vector is the mean of its own embedding and those of its
character 3-5-grams, hashed into SUBWORD_BUCKETS rows (fastText's subword vectors, Bojanowski et
al. 2017), so a word never seen in training is still read through its pieces: more than half of
SST-2's dev sentences hold such a word, mostly inflections of known ones. Reading them took the
BiLSTM and the blend up by a point or more; four times the buckets scored about the same at four
times the time per step, as Adam updates every row (bench/README.md).

Each word is ``slots`` ids (its own, then its n-grams', 0-padded), flattened, so a text is one
list of ids like the encoder's and trains in the same loop and batches (appkit/train);
``forward`` folds them back. It is stored as one safetensors file with its vocabulary and sizes
in the header (member_io.py).
"""

from __future__ import annotations

import functools
import re
import zlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from apps.sentiment.ngrams import TOKEN_PATTERN

WEIGHTS_FILE = "lstm.safetensors"
PAD_ID, UNKNOWN_ID = 0, 1
MAX_VOCABULARY = 50_000
MAX_WORDS = 256  # longer texts keep their first and last 128 words (the encoder, too, keeps a start and the end)
LEARNING_RATE = 2e-3
ADAM_BETA2 = 0.999  # Adam's usual, not the transformer's 0.98: a little better on SST-2 (bench/README.md)
BATCH_SIZE = 50
SUBWORD_BUCKETS = 32_768
GRAM_SIZES = (3, 4, 5)
MAX_GRAMS = 20  # per word: all of a 10-letter word's 3- and 4-grams, the first of its 5-grams
_WORDS = re.compile(TOKEN_PATTERN)


class WordLSTM(nn.Module):
    """Word + n-gram vectors -> BiLSTM -> max over words -> label logits; ``forward`` as a transformers classifier's."""

    def __init__(self, vocabulary: Sequence[str], n_classes: int, *, embedding: int = 128, hidden: int = 150,
                 dropout: float = 0.5, buckets: int = SUBWORD_BUCKETS) -> None:
        """``buckets``: rows for hashed character n-grams (at least 1)."""
        super().__init__()
        if buckets < 1:
            raise ValueError(f"buckets must be at least 1, got {buckets}")
        self.vocabulary = list(vocabulary)
        self.index = {word: i + 2 for i, word in enumerate(self.vocabulary)}  # 0: padding, 1: unknown
        self.slots = 1 + MAX_GRAMS
        # The attribute transformers models have: predict_logits reads num_labels.
        self.config = SimpleNamespace(num_labels=n_classes, embedding=embedding, hidden=hidden, dropout=dropout,
                                      buckets=buckets)
        self.embed = nn.Embedding(len(self.vocabulary) + 2 + buckets, embedding, padding_idx=PAD_ID)
        # Per model, bounded: a large batch file brings many new words, and each costs ~20 hashes.
        self._word_slots = functools.lru_cache(maxsize=200_000)(self._slots_of)
        self.rnn = nn.LSTM(embedding, hidden, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden, n_classes)

    @classmethod
    def from_texts(cls, texts: Sequence[str], n_classes: int) -> WordLSTM:
        """A fresh model whose vocabulary is the commonest words of ``texts`` (seed torch first)."""
        counts = Counter(word for text in texts for word in _WORDS.findall(text.lower()))
        return cls([word for word, _ in counts.most_common(MAX_VOCABULARY)], n_classes)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Per text, ``slots`` ids per word, flattened (at least one word: an empty text reads as one unknown word)."""
        out = []
        for text in texts:
            words = _WORDS.findall(text.lower()) or [""]
            if len(words) > MAX_WORDS:
                words = words[:MAX_WORDS // 2] + words[-(MAX_WORDS // 2):]
            out.append([i for word in words for i in self._word_slots(word)])
        return out

    def _slots_of(self, word: str) -> tuple[int, ...]:
        """The word's id and its n-grams' ids, padded to ``slots``. A word outside the vocabulary is its
        n-grams alone, in training and in use (UNKNOWN_ID only when it has none): on SST-2 every training
        word is in the vocabulary, so UNKNOWN_ID's vector would be an untrained one blurring trained pieces."""
        grams: list[int] = []
        if word:
            first_bucket = len(self.vocabulary) + 2
            marked = f"<{word}>"  # so "<un" (a prefix) and "un>" differ from "un" inside a word
            pieces = (marked[i:i + n] for n in GRAM_SIZES for i in range(len(marked) - n + 1))
            grams = [first_bucket + zlib.crc32(g.encode()) % self.config.buckets for g in pieces][:MAX_GRAMS]
        own = self.index.get(word)
        ids = [own] if own is not None else ([] if grams else [UNKNOWN_ID])
        ids += grams
        return tuple(ids + [PAD_ID] * (self.slots - len(ids)))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        """``.logits`` (B, C) for right-padded ``input_ids`` (B, T * slots), as ``encode`` makes them.

        Packed, so the backward direction starts at each text's last word, not at the padding:
        a text gets the same probabilities alone as in any batch.
        """
        batch = input_ids.shape[0]
        ids = input_ids.view(batch, -1, self.slots)  # (B, T, slots)
        words = attention_mask.view(batch, -1, self.slots)[:, :, 0]  # (B, T)
        present = (ids != PAD_ID).sum(-1, keepdim=True).clamp(min=1)
        vectors = self.embed(ids).sum(2) / present  # the mean of the word's and its n-grams' embeddings
        lengths = words.sum(1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.drop(vectors), lengths, batch_first=True,
                                                   enforce_sorted=False)
        states, _ = self.rnn(packed)
        states, _ = nn.utils.rnn.pad_packed_sequence(states, batch_first=True, total_length=ids.shape[1])
        pooled = states.masked_fill(~words.bool().unsqueeze(-1), float("-inf")).max(1).values
        return SimpleNamespace(logits=self.head(self.drop(pooled)))

    def log_probabilities(self, texts: Sequence[str]) -> Any:
        """Natural-log probabilities, numpy (N, C)."""
        from apps.sentiment.model import predict_logits

        device = str(self.head.weight.device)  # where the analyzer put it: beside the encoder
        return predict_logits(self, self.encode(texts), PAD_ID, device=device).log_softmax(-1).double().numpy()

    def save(self, directory: Path) -> None:
        """Write the weights, vocabulary and sizes into ``directory`` (a model folder being staged)."""
        from apps.sentiment.member_io import write_member_file

        spec = {"vocabulary": self.vocabulary, "n_classes": self.config.num_labels,
                "embedding": self.config.embedding, "hidden": self.config.hidden, "buckets": self.config.buckets,
                **_reading()}
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        write_member_file(directory / WEIGHTS_FILE, state, spec, "pt")

    @classmethod
    def load(cls, directory: Path) -> WordLSTM:
        """Read what ``save`` wrote, in eval mode; ModelError if it is missing or does not fit together."""
        from apps.sentiment.member_io import read_member_file, reading_member

        with reading_member(directory, "BiLSTM"):
            spec, state = read_member_file(directory / WEIGHTS_FILE, "pt")
            _check_reading(spec)
            model = cls(spec["vocabulary"], int(spec["n_classes"]), embedding=int(spec["embedding"]),
                        hidden=int(spec["hidden"]), buckets=int(spec["buckets"]))
            model.load_state_dict(state)
        return model.eval()


def _reading() -> dict[str, Any]:
    """How texts become ids: saved with the weights, and checked on loading (other ids would misread them)."""
    return {"token_pattern": TOKEN_PATTERN, "gram_sizes": list(GRAM_SIZES), "max_grams": MAX_GRAMS}


def _check_reading(spec: dict[str, Any]) -> None:
    """ValueError if the saved model split texts into words or n-grams differently from this code."""
    ours = _reading()
    theirs = {key: spec.get(key) for key in ours}
    if theirs != ours:
        raise ValueError(f"it reads words and n-grams as {theirs}, this version as {ours}")
