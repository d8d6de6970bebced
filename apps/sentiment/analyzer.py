"""Use a trained sentiment classifier: ``SentimentAnalyzer.analyze(texts)`` -> label, probabilities, score.

    import appkit
    analyzer = appkit.load_app("sentiment")          # the active model (or model="name" / a directory)
    for r in analyzer.analyze(["I love it", "never again"]):
        print(r.label, r.probabilities, r.score)     # score: -1 (negative) .. +1 (positive)

Texts are batched in order of length (little padding) and returned in input order. The
probabilities are calibrated (the encoder's temperature is folded into its saved weights; a
model that blends the encoder with the models trained beside it, blend.py, has a temperature
of its own).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apps.sentiment.labels import score as polarity_score
from apps.sentiment.model import Wrapping

if TYPE_CHECKING:
    from appkit.config import Settings

TRAIN_HINT = "run `appkit sentiment train --data labeled.csv`"


@dataclass(frozen=True)
class SentimentResult:
    """One text's prediction."""

    label: str
    probabilities: dict[str, float]
    score: float | None  # expected polarity in [-1, 1]; None when the labels have no order
    truncated: bool = False  # the text was longer than the model's context and was cut

    @property
    def confidence(self) -> float:
        """The probability of the predicted label."""
        return self.probabilities[self.label]


class SentimentAnalyzer:
    """A loaded sentiment classifier (thread-safe for inference; load once, call many times)."""

    def __init__(self, model: Any, tokenizer: Any, metadata: dict[str, Any], *, name: str, path: Path,
                 device: str = "cpu", batch_size: int = 64, blend: bool = True) -> None:
        self.model, self.tokenizer, self.metadata = model, tokenizer, metadata
        self.name, self.path, self.device, self.batch_size = name, path, device, batch_size
        self.labels: tuple[str, ...] = tuple(metadata["labels"])
        self.polarity: dict[str, float] = dict(metadata.get("polarity") or {})
        self.wrapping = Wrapping.from_dict(metadata["wrapping"])
        self.member_names: list[str] = []
        self.members: list[Any] = []  # blend.Member
        self.blend_temperature = 1.0
        if blend:
            from apps.sentiment.blend import blend_spec, load_members

            self.member_names, self.blend_temperature = blend_spec(metadata)
            self.members = [m.to(device) if hasattr(m, "to") else m for m in load_members(path, self.member_names)]

    @classmethod
    def open(cls, model: str | None = None, *, settings: Settings | None = None, policy: Any = None,
             **options: Any) -> SentimentAnalyzer:
        """The active sentiment model, or ``model`` (a registered name or a directory).

        ``policy`` is accepted and unused: openers pass it to every app, and a classifier's
        output (a label) has nothing to moderate. ``options``: device, batch_size, threads.
        """
        from appkit.config import load_settings
        from appkit.models import resolve_model_path
        from apps.sentiment.model import set_cpu_wait_policy

        set_cpu_wait_policy()  # before resolve_device() imports torch
        settings = settings or load_settings()
        name, path = resolve_model_path("sentiment", model, settings, train_hint=TRAIN_HINT)
        return cls.load(path, name=name, device=options.pop("device", None) or settings.resolve_device(), **options)

    @classmethod
    def load(cls, path: str | Path, *, name: str | None = None, device: str = "cpu", batch_size: int = 64,
             threads: int | None = None, blend: bool = True) -> SentimentAnalyzer:
        """Load a saved classifier directory (``blend=False``: its encoder alone, without the models blended in)."""
        from apps.sentiment.model import load_classifier, set_cpu_wait_policy

        set_cpu_wait_policy()
        if threads:
            import torch

            torch.set_num_threads(threads)
        path = Path(path).expanduser()
        model, tokenizer, metadata = load_classifier(path, device)
        return cls(model, tokenizer, metadata, name=name or path.name, path=path, device=device, batch_size=batch_size,
                   blend=blend)

    @property
    def model_name(self) -> str:
        """The model's registered name (or its directory's name)."""
        return self.name

    @property
    def max_length(self) -> int:
        """The most tokens one text may have (with the special tokens); longer texts are cut."""
        return self.wrapping.max_length

    def analyze(self, texts: Sequence[str], *, warn: bool = True) -> list[SentimentResult]:
        """Predict every text; results in input order. ``warn``: one warning if any text was cut."""
        from apps.sentiment.model import encode, predict_logits

        texts = [str(t) for t in texts]
        if not texts:
            return []
        ids, lengths = encode(self.tokenizer, texts, self.wrapping)
        logits = predict_logits(self.model, ids, self.wrapping.pad_id, self.batch_size, self.device)
        probs = self._probabilities(logits, texts)
        cut = [i for i, n in enumerate(lengths) if n > self.max_length]
        if cut and warn:
            warnings.warn(f"{len(cut)} of {len(texts)} texts are longer than the model's context of {self.max_length} "
                          f"tokens and were cut to their start and end (first: text {cut[0] + 1}, "
                          f"{lengths[cut[0]]} tokens).", stacklevel=2)
        cut_set = set(cut)
        return [self._result(p, i in cut_set) for i, p in enumerate(probs)]

    def _probabilities(self, logits: Any, texts: list[str]) -> list[list[float]]:
        """Each text's label probabilities: the encoder's, or its blend with the other members."""
        if not self.members:
            return logits.softmax(-1).tolist()
        import numpy as np

        from apps.sentiment.blend import blend

        others = [member.log_probabilities(texts) for member in self.members]
        return np.exp(blend(logits, others, self.blend_temperature)).tolist()

    def analyze_one(self, text: str) -> SentimentResult:
        """``analyze([text])[0]``."""
        return self.analyze([text])[0]

    def _result(self, probs: list[float], truncated: bool) -> SentimentResult:
        probabilities = dict(zip(self.labels, probs))
        label = max(probabilities, key=probabilities.__getitem__)
        return SentimentResult(label, probabilities, polarity_score(probabilities, self.polarity), truncated)

    def describe(self) -> dict[str, Any]:
        """Name, size, device, labels and validation figures (for status bars and `--json`)."""
        from appkit.model.build import count_parameters

        metrics = self.metadata.get("metrics", {})
        return {"name": self.name, "path": str(self.path),
                "parameters": count_parameters(self.model) + sum(count_parameters(m) for m in self.members
                                                                 if hasattr(m, "parameters")),
                "blend": ["encoder", *self.member_names] if self.members else [],
                "device": self.device, "labels": list(self.labels), "context": self.max_length,
                "val_accuracy": metrics.get("val_accuracy"), "temperature": metrics.get("temperature")}

    def close(self) -> None:
        """Nothing to release (the model is freed with the object); here for the app protocol."""
