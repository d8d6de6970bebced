"""Train the support bot: read a history, train a grounded chat model, register it as active."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appkit.config import Settings, load_settings
from appkit.data import Conversation, Turn, read_history_with_report
from appkit.train.pipeline import ChatTrainingOptions, TrainedChatModel, prepare_conversations, train_chat_model
from apps.support.prompting import SYSTEM_TEMPLATE

APP_NAME = "support"
# Retrieved cases in the model's own prompt. 0: grounding happens outside the model (the
# grounder offers past replies, the model judges them), so the model trains on the
# conversation alone: on Bitext a third of the tokens of a prompt with two cases, so three
# times the epochs in the same minutes, and no reply cut short by the context.
PROMPT_CASES = 0
SPLIT_FILE = "split.json"


def train_support(
    history: str | Path,
    *,
    name: str | None = None,
    options: ChatTrainingOptions | None = None,
    resume: bool = False,
    replace: bool = False,
    retrieval: bool = True,
    include_feedback: bool = False,
    settings: Settings | None = None,
    read_options: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> TrainedChatModel:
    """Train a support model on ``history`` and make it the support app's active model.

    Args:
        history: a CSV/TSV/JSONL/JSON file of past conversations (see ``appkit.data.read_history``).
        name: the model's name; a new timestamped one by default, the interrupted run's with ``resume``.
        options: training choices (preset, budgets, device ...).
        resume: continue the interrupted run called ``name`` (or the latest interrupted one).
        replace: train a new model in place of the support model (or run) called ``name``.
        retrieval: ground replies on similar past cases (trained and served the same way).
        include_feedback: add stored conversations rated good, drop replies rated bad.
        read_options: shape/column/speaker-map overrides for the reader.
    """
    from appkit.models import resolve_base
    from appkit.store import open_store
    from appkit.train.tracking import latest_unfinished_run, run_name, tracked_run

    settings = settings or load_settings()
    options = options or ChatTrainingOptions(device=settings.resolve_device())
    if options.is_toxic is None:
        from appkit.safety import toxicity_filter

        # Tickets carry customers' worst words: score every turn and drop (or, with
        # keep_toxic, count) toxic conversations before the model can learn them.
        options.is_toxic = toxicity_filter(settings)
        log(f"toxicity filter: {options.is_toxic.backend}")
    conversations, read_report = read_history_with_report(history, **(read_options or {}))
    log(read_report.summary())

    if include_feedback:
        with open_store(settings) as store:
            rated = conversations_from_feedback(store)
        log(f"feedback: {len(rated)} stored conversations with good ratings added")
        conversations = [*conversations, *rated]
    if resume and name is None:
        name = latest_unfinished_run(settings, APP_NAME, "appkit support train")
    name = run_name(APP_NAME, name)
    config = {"history": str(history), "options": options.as_config(), "resume": resume, "retrieval": retrieval}
    if options.base:  # a wrong --base fails here, before a run is recorded
        options.base = str(resolve_base(options.base, settings))
    with tracked_run(settings, APP_NAME, name, config, resume=resume, replace=replace) as run:
        train, val, curation = prepare_conversations(conversations, options, log=log)
        trained = train_split(train, val, curation, name=name, options=options, settings=settings,
                              retrieval=retrieval, resume=resume, log=log)
        run.register(trained, data={"history": str(history), "retrieval": retrieval,
                                    "curation": trained.curation.as_dict()})
    log(f"saved {trained.path} and made it the active support model")
    return trained


def train_split(train: list[Conversation], val: list[Conversation], curation: Any, *, name: str,
                options: ChatTrainingOptions, settings: Settings, retrieval: bool = True, resume: bool = False,
                log: Callable[[str], None] = print) -> TrainedChatModel:
    """Train, save the split and fit the grounding of a support model on curated ``train``/``val``
    (registering it is the caller's: ``train_support`` makes it active, a retrain a candidate)."""
    from appkit.prompts import prompts_for
    from apps.support.cases import CaseIndex, cases_from
    from apps.support.prompting import DEFAULT_COMPANY, with_system_prompt, with_training_topics

    company = settings.app(APP_NAME).company or DEFAULT_COMPANY
    index = CaseIndex(cases_from(train)) if retrieval else None
    prompts = prompts_for(settings)
    in_prompt = index if PROMPT_CASES else None
    shown_train, shown_val = train, val
    if index is not None:  # the topic the router names for each customer message, as the bot shows it
        from appkit.progress import Progress

        started = time.monotonic()
        index.group_replies()
        folds = 5
        with Progress("topics (routers fitted)", folds + 1, enabled=options.progress) as bar:
            index.fit_router()
            bar.update(1)
            held_out = index.held_out_topics(folds, progress=lambda done, total: bar.update(1 + done))
        shown_train = with_training_topics(train, index, held_out)
        shown_val = with_training_topics(val, index)
        log(f"topics: {len(index.cases)} cases in {len(index.members)} reply groups, routed "
            f"({time.monotonic() - started:.0f}s)")
    trained = train_chat_model(
        with_system_prompt(shown_train, prompts, company, in_prompt),
        with_system_prompt(shown_val, prompts, company, in_prompt),
        name=name, models_dir=settings.models_dir, runs_dir=settings.runs_dir, options=options,
        curation=curation, resume=resume, log=log,
        extra_metadata={"app": APP_NAME, "support": {"retrieval": retrieval, "company": company,
                                                     "prompt_cases": PROMPT_CASES, "topics": index is not None}},
    )
    save_split(trained.path, train, val)
    if index is not None:
        prepare_grounding(trained.path, index, val, prompts, company, device=options.device,
                          progress=options.progress, log=log)
    return trained


def save_split(model_dir: Path, train: list[Conversation], val: list[Conversation]) -> None:
    """Record which conversations the model trained on and which it was validated on, so an
    evaluation scores exactly the held-out ones whatever options or filters it runs with."""
    from appkit.files import write_json_atomic

    write_json_atomic(Path(model_dir) / SPLIT_FILE, {"train": [c.id for c in train], "validation": [c.id for c in val]})


def prepare_grounding(model_dir: Path, index: Any, val: list[Conversation], prompts: Any, company: str, *,
                      device: str = "cpu", progress: bool = True, limit: int = 300,
                      log: Callable[[str], None] = print) -> Any:
    """Compute the case replies' priors under the new model and fit how retrieval evidence and
    the model's judgement combine (on the validation conversations); save it all beside the
    model. The index's reply groups and router were fitted before training (the topics)."""
    from concurrent.futures import ThreadPoolExecutor

    from appkit.engine import GREEDY, Engine
    from appkit.progress import Progress
    from appkit.errors import GenerationError
    from apps.support.grounding import (Grounder, exchanges_of, fit_weights, new_wordings, reply_priors,
                                        save_weights, spread)
    from apps.support.prompting import model_prompt, system_message

    system = {"role": "system", "content": system_message(prompts, company, [], None, cases_per_prompt=0).text}
    engine = Engine.load(model_dir, device=device)
    try:
        null = [system, {"role": "user", "content": ""}]
        n_replies = len({c.agent for c in index.cases})
        with Progress("reply priors", n_replies, enabled=progress) as bar:
            priors = reply_priors(index, lambda replies: [s.mean for s in engine.score(null, replies)],
                                  progress=lambda done, total: bar.update(done))
        index.with_priors(priors)

        def prompt_of(messages: Any) -> list[dict[str, str]]:  # as the bot prompts (no cases in it)
            return model_prompt(engine, prompts, company, messages, index, topics=True)[0]

        def fits(ex: Any) -> bool:  # a last message longer than the context: no reply to judge
            try:
                engine.check_fits(prompt_of(ex.messages))
            except GenerationError:
                return False
            return True

        exchanges = spread(new_wordings(index, [ex for ex in exchanges_of(val) if fits(ex)]), limit)
        with Progress("the model's own replies", len(exchanges), enabled=progress) as bar, \
                ThreadPoolExecutor(max_workers=8) as pool:  # 8 at a time: the engine batches them
            done = 0

            def own(ex: Any) -> str:
                nonlocal done
                text = engine.reply(prompt_of(ex.messages), GREEDY).text
                done += 1
                bar.update(done)
                return text

            own_replies = list(pool.map(own, exchanges))

        def scorer(messages: Any, replies: Any) -> list[float]:
            return [s.mean for s in engine.score(prompt_of(messages), replies)]

        with Progress("fitting the grounding", len(exchanges), enabled=progress) as bar:
            weights = fit_weights(Grounder(index), exchanges, scorer, own_replies,
                                  progress=lambda done, total: bar.update(done))
    finally:
        engine.close()
    index.save(model_dir)
    save_weights(model_dir, weights)
    grounded = weights["grounded"]
    echo = dict(zip(grounded.features, grounded.coef)).get("echo", 0.0)
    where = ("not weighed: it did not beat retrieval on validation" if echo == 0.0 else
             "weighed wherever" if grounded.model_below >= 1.0 else
             f"weighed where retrieval scores under {grounded.model_below:.2f}")
    log(f"grounding: {len(index.cases)} cases in {len(index.members)} reply groups; grounded weights "
        + ", ".join(f"{f} {c:+.2f}" for f, c in zip(grounded.features, grounded.coef))
        + f" (the model's part {where}); the model's own reply under {grounded.fallback_below:.2f} "
          f"(fitted on {grounded.fitted_on} held-out exchanges)")
    return weights


def conversations_from_feedback(store: Any) -> list[Conversation]:
    """Stored support conversations with a good rating, cut before any reply rated bad.

    A reply rated bad is never learned from: the conversation keeps only what came before it.
    """
    out: list[Conversation] = []
    for conv in store.list_conversations(app=APP_NAME, limit=100_000):
        ratings = {f.message_id: f.rating for f in store.feedback_for(conv.id)}
        if 1 not in ratings.values():
            continue
        turns: list[Turn] = []
        for m in store.messages(conv.id):
            if m.role == "assistant" and ratings.get(m.id) == -1:
                break
            if m.role == "assistant" and m.template_name not in (None, SYSTEM_TEMPLATE):
                continue  # handoff and waiting notices come from templates, not from the model
            if m.status == "ok" and m.role in ("user", "assistant"):
                turns.append(Turn(m.role, m.content))  # type: ignore[arg-type]
        if any(t.role == "assistant" for t in turns):
            out.append(Conversation(f"stored-{conv.id}", turns, source=f"database conversation {conv.id}"))
    return out
