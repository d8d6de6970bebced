"""Generate mode's misses on Bitext for a model bench/support.py trained: what the model wrote,
the router's topic it read, and the intent the bench's judge gave the reply.

    python bench/support.py --datasets bitext --home DIR          # trains and keeps DIR/models/bitext
    python dev/generate_misses.py --home DIR [--seed 0] [--repetition-penalty 1.1]

The split and the judge are the bench's (same --seed, --per-intent), so the accuracy printed last
is the bench's generate row for those settings.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import support as bench  # noqa: E402  (bench/support.py)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--home", type=Path, required=True, help="the --home of a bench/support.py run")
    p.add_argument("--bitext", type=Path, default=bench.DATASETS["bitext"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--per-intent", type=int, default=10)
    p.add_argument("--repetition-penalty", type=float, default=None, help="default: the bot's own (none)")
    args = p.parse_args()

    from appkit.config import load_settings
    from apps.support.bot import SupportBot
    from apps.support.replies import model_view, reply_params

    split = bench.split_bitext(args.bitext, Path(tempfile.mkdtemp()), args.per_intent, args.seed)
    judge = bench.intent_judge(split)
    given = {} if args.repetition_penalty is None else {"repetition_penalty": args.repetition_penalty}
    bot = SupportBot.open(model="bitext", settings=load_settings(home=args.home), policy=None)
    answers, topics = [], []
    try:
        for e in bench.progress(split.held_out, "generate"):
            answers.append(bot.reply(e.message, e.context, reply_params(**given), mode="generate").text)
            seen = model_view([{"role": "user", "content": e.message}])[0]["content"]  # as the router sees it
            topics.append(bot.index.topic(seen) if bot.topics else None)
    finally:
        bot.close()
    judged = judge.predict(answers)
    tally: Counter[str] = Counter()
    for e, intent, topic, answer in zip(split.held_out, judged, topics, answers):
        right_topic = topic is not None and topic.replace(" ", "_") == e.intent
        tally[f"{'right' if intent == e.intent else 'wrong'} reply, "
              f"{'no' if topic is None else 'right' if right_topic else 'wrong'} topic"] += 1
        if intent != e.intent:
            print(f"{e.intent} (topic {topic}) judged {intent}: {e.message[:60]!r} -> {answer[:90]!r}")
    print(dict(tally))
    print(f"generate intent accuracy {sum(j == e.intent for j, e in zip(judged, split.held_out)) / len(judged):.3f}")


if __name__ == "__main__":
    main()
