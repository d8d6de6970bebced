"""A word-level bidirectional LSTM, one of the models blended with the encoder (blend.py).

Why beside a transformer: trained from scratch on a few thousand sentences, recurrence over
whole words is the better inductive bias. On SST-2 dev it scored 80.2-81.7% alone (81.9-83.4%
in prototypes outside appkit) against 79.6-81.0% for the 2x96 encoder, and its mistakes differ
from the encoder's and the n-grams': adding it lifted the blend from 83.5% to 84.1% (seed 0).
The design is the plain one that works on sentence classification (Conneau et al. 2017's
BiLSTM-max): embeddings, one bidirectional LSTM layer, max-pooling over the words, a linear
layer; dropout 0.5 on the embeddings and the pooled vector. About a minute an epoch on SST-2's
67k phrases on 2 CPU cores (a bare prototype loop without packing took 33 s).

Words are lower-cased words and punctuation marks (the n-gram model's tokens), the commonest
MAX_VOCABULARY in training; the rest read as unknown. It is stored as one safetensors file with
its vocabulary and sizes in the header (member_io.py).
"""

from __future__ import annotations

import re
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
BATCH_SIZE = 50
_WORDS = re.compile(TOKEN_PATTERN)


class WordLSTM(nn.Module):
    """Word embeddings -> BiLSTM -> max over words -> label logits; ``forward`` as a transformers classifier's."""

    def __init__(self, vocabulary: Sequence[str], n_classes: int, *, embedding: int = 128, hidden: int = 150,
                 dropout: float = 0.5) -> None:
        super().__init__()
        self.vocabulary = list(vocabulary)
        self.index = {word: i + 2 for i, word in enumerate(self.vocabulary)}  # 0: padding, 1: unknown
        # The attribute transformers models have: the training loop and predict_logits read num_labels.
        self.config = SimpleNamespace(num_labels=n_classes, embedding=embedding, hidden=hidden, dropout=dropout)
        self.embed = nn.Embedding(len(self.vocabulary) + 2, embedding, padding_idx=PAD_ID)
        self.rnn = nn.LSTM(embedding, hidden, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden, n_classes)

    @classmethod
    def from_texts(cls, texts: Sequence[str], n_classes: int) -> WordLSTM:
        """A fresh model whose vocabulary is the commonest words of ``texts`` (seed torch first)."""
        counts = Counter(word for text in texts for word in _WORDS.findall(text.lower()))
        return cls([word for word, _ in counts.most_common(MAX_VOCABULARY)], n_classes)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Word ids per text (at least one: an empty text reads as one unknown word)."""
        out = []
        for text in texts:
            ids = [self.index.get(word, UNKNOWN_ID) for word in _WORDS.findall(text.lower())] or [UNKNOWN_ID]
            if len(ids) > MAX_WORDS:
                ids = ids[:MAX_WORDS // 2] + ids[-(MAX_WORDS // 2):]
            out.append(ids)
        return out

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        """``.logits`` (B, C) for right-padded ``input_ids`` (B, T).

        Packed, so the backward direction starts at each text's last word, not at the padding:
        a text gets the same probabilities alone as in any batch.
        """
        lengths = attention_mask.sum(1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.drop(self.embed(input_ids)), lengths, batch_first=True,
                                                   enforce_sorted=False)
        states, _ = self.rnn(packed)
        states, _ = nn.utils.rnn.pad_packed_sequence(states, batch_first=True, total_length=input_ids.shape[1])
        pooled = states.masked_fill(~attention_mask.bool().unsqueeze(-1), float("-inf")).max(1).values
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
                "embedding": self.config.embedding, "hidden": self.config.hidden, "token_pattern": TOKEN_PATTERN}
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        write_member_file(directory / WEIGHTS_FILE, state, spec, "pt")

    @classmethod
    def load(cls, directory: Path) -> WordLSTM:
        """Read what ``save`` wrote, in eval mode; ModelError if it is missing or does not fit together."""
        from apps.sentiment.member_io import read_member_file, reading_member

        with reading_member(directory, "BiLSTM"):
            spec, state = read_member_file(directory / WEIGHTS_FILE, "pt")
            model = cls(spec["vocabulary"], int(spec["n_classes"]), embedding=int(spec["embedding"]),
                        hidden=int(spec["hidden"]))
            model.load_state_dict(state)
        return model.eval()
