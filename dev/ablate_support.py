"""Why was generation weak? The support model's training setup, one change at a time (issue 14.4).

Each variant trains the support bot on the Bitext split of bench/support.py for the same work
and is scored on the same held-out customer messages in generate mode (the model's own reply,
greedy): reply intent accuracy (the bench's judge), raw placeholders, and the best validation
loss (reply tokens only, so the variants compare).

- ``now``:        the product as it is (conversation only in the prompt, packed rows kept apart);
- ``cases``:      two retrieved cases in the model's prompt, as before issue 14;
- ``cases+leak``: and packed conversations attending to their row-mates, as before the fix.
- ``noise``:      a tenth of the prompt's tokens (customer turns, system prompt; never a control
                  token or a reply token) replaced by random ones at every training step, so
                  the model cannot lean on any one word of the customer's (new wordings).

The old setups are restored by patching, here only: they are experiments, not options.

    python dev/ablate_support.py now cases cases+leak --steps 300 --per-intent 5

Results go to dev/LOG.md by hand, with the command.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from support import DATASETS, RAW_PLACEHOLDER, split_bitext  # noqa: E402


def patch(variant: str) -> None:
    import apps.support.train as support_train
    from appkit.train.packing import Batch

    # Generate mode needs no grounding fit: only the case index, for the prompts that show cases.
    support_train.prepare_grounding = lambda model_dir, index, *a, **k: index.save(model_dir)
    if "cases" in variant.split("+"):
        support_train.PROMPT_CASES = 2
    if "leak" in variant.split("+"):
        inputs = Batch.inputs

        def leaky(self: Batch, device: Any) -> dict[str, Any]:
            return {**inputs(self, device), "use_cache": True}

        Batch.inputs = leaky  # type: ignore[method-assign]
    if variant == "noise":
        import torch

        from appkit.train.loop import Trainer
        from appkit.train.packing import IGNORE

        forward_backward = Trainer._forward_backward

        def noisy(self: Trainer, batch: Any) -> Any:
            ids = batch.input_ids
            prompt = (batch.labels == IGNORE) & (ids >= 5)  # ids 0-4: pad, end and role tokens
            hit = prompt & (torch.rand(ids.shape) < 0.1)
            ids[hit] = torch.randint(5, int(ids.max()) + 1, (int(hit.sum()),))
            return forward_backward(self, batch)

        Trainer._forward_backward = noisy  # type: ignore[method-assign]


def run(variant: str, minutes: float | None, seed: int, per_intent: int, steps: int | None = None,
        batch_size: int | None = None, lr: float | None = None) -> dict[str, Any]:
    from appkit.config import load_settings
    from appkit.engine import GenerationParams
    from appkit.train.pipeline import ChatTrainingOptions
    from apps.support.bot import SupportBot
    from apps.support.evaluate import IntentClassifier
    from apps.support.train import train_support

    patch(variant)
    with tempfile.TemporaryDirectory(prefix="ablate-") as tmp:
        split = split_bitext(DATASETS["bitext"], Path(tmp), per_intent, seed)
        settings = load_settings(home=Path(tmp) / "home")
        start = time.perf_counter()
        trained = train_support(split.train_file, name="ablate", settings=settings, log=lambda s: None,
                                options=ChatTrainingOptions(preset="tiny", max_minutes=minutes, max_steps=steps,
                                                            batch_size=batch_size, learning_rate=lr,
                                                            seed=seed, progress=False))
        train_min = (time.perf_counter() - start) / 60
        bot = SupportBot.open(model="ablate", settings=settings, policy=None, reply_mode="generate")
        params = GenerationParams(temperature=0.0, repetition_penalty=1.1, max_new_tokens=256)
        try:
            answers = [bot.reply(e.message, e.context, params, mode="generate").text for e in split.held_out]
        finally:
            bot.close()
    judge = IntentClassifier([a for _, a, _ in split.pairs], [i or "" for _, _, i in split.pairs])
    right = sum(p == e.intent for p, e in zip(judge.predict(answers), split.held_out))
    return {"variant": variant, "minutes": minutes, "max_steps": steps, "batch_size": batch_size, "lr": lr,
            "train_minutes_all": round(train_min, 2),
            "steps": trained.metrics["steps"], "best_val_loss": trained.metrics["best_val_loss"],
            "generate_intent_accuracy": round(right / len(answers), 4), "n": len(answers),
            "raw_placeholders": sum(bool(RAW_PLACEHOLDER.search(a)) for a in answers),
            "examples": answers[:3]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("variants", nargs="+", choices=["now", "cases", "cases+leak", "noise"])
    p.add_argument("--minutes", type=float, default=None, help="training budget per variant")
    p.add_argument("--steps", type=int, default=None,
                   help="or a number of optimizer steps (the same work per variant whatever else runs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--per-intent", type=int, default=10, help="held-out messages per intent")
    p.add_argument("--batch-size", type=int, default=None, help="rows per step (default: the preset's)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the preset's)")
    args = p.parse_args()
    import subprocess

    if len(args.variants) > 1:  # each variant in a fresh process: the patches must not stack
        for v in args.variants:
            budget = ["--minutes", str(args.minutes)] if args.minutes else ["--steps", str(args.steps)]
            tuning = [*(["--batch-size", str(args.batch_size)] if args.batch_size else []),
                      *(["--lr", str(args.lr)] if args.lr else [])]
            subprocess.run([sys.executable, __file__, v, *budget, *tuning, "--seed", str(args.seed),
                            "--per-intent", str(args.per_intent)], check=True)
        return
    if not args.minutes and not args.steps:
        p.error("give --minutes or --steps")
    print(json.dumps(run(args.variants[0], args.minutes, args.seed, args.per_intent, args.steps,
                         args.batch_size, args.lr)), flush=True)


if __name__ == "__main__":
    main()
