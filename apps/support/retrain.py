"""``appkit support retrain``: learn from the stored conversations, and promote only a model that is no worse.

1. **Data.** The active model's own split (its history file, read and curated again, and the
   stored conversations it already learned from) plus the stored conversations it has not
   learned from (apps/support/learned.py: human agents' answers after a handoff, replies rated
   good), curated as any history is (personal data replaced, toxic conversations dropped,
   duplicates removed). A share of the new ones (``held_out``) is kept out of training. Too few
   new ones: NotEnoughDataError, and nothing is written.
2. **Candidate.** Fine-tuned from the active model (``--base`` to start elsewhere), validated on
   the active model's validation conversations and the new held-out ones, registered with status
   ``candidate`` (never active while it is judged).
3. **Gates.** Candidate and active model answer the same held-out exchanges in the configured
   reply mode: the history's validation conversations (reply intent accuracy when the history
   names intents, else ROUGE-L against the agent's reply) and the new held-out conversations a
   person answered (ROUGE-L against the person's answer; share answered rather than handed
   over). Both go through the safety audit. The candidate passes a quality gate when it scores at least the
   active model's figure less ``tolerance``, and an audit gate when it is within the audit's
   limit or no worse than the active model.
4. **Promotion** only if every gate passes (and not ``dry_run``); ``appkit models rollback``
   undoes it. The comparison is printed and saved as ``retrain.json`` beside the candidate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appkit.errors import DataError, ModelError, NotEnoughDataError
from apps.support.gate import RetrainResult

if TYPE_CHECKING:
    from appkit.config import Settings
    from appkit.data import Conversation
    from appkit.store.records import ModelRecord
    from appkit.train.pipeline import ChatTrainingOptions

APP = "support"
RESULT_FILE = "retrain.json"
MIN_HELD_OUT = 3


@dataclass
class RetrainOptions:
    """What `appkit support retrain` was asked to do."""

    since: datetime | None = None  # learn only from conversations started since then (default: all)
    min_new: int = 20  # refuse with fewer new conversations to learn from
    held_out: float = 0.25  # share of the new conversations kept out of training for the gate
    tolerance: float = 0.01  # a quality gate passes at the active model's figure less this
    limit: int = 300  # held-out exchanges scored per set
    audit_messages: int = 120  # identity-swapped messages the audit sends to each model
    crows: Path | None = None  # CrowS-Pairs CSV for the audit's language-model gate (skipped without)
    dry_run: bool = False
    candidate: str | None = None  # judge this registered model instead of training one
    name: str | None = None
    from_scratch: bool = False  # train a new model rather than fine-tune the active one
    seed: int = 0


@dataclass
class RetrainData:
    history: Path
    train: list[Conversation]  # the active model's training split and the new conversations to learn
    base_val: list[Conversation]  # the active model's validation conversations (from the history)
    new_val: list[Conversation]  # new stored conversations held out for the gate
    counts: dict[str, int]
    curation: Any = None  # the stored conversations' CurationReport (its settings are the history's)


def retrain(settings: Settings, options: RetrainOptions, training: ChatTrainingOptions | None = None, *,
            log: Callable[[str], None] = print) -> RetrainResult:
    """Build the new history, train (or take) a candidate, compare it with the active model, promote if no worse.

    Raises:
        ModelError: no active support model, or ``options.candidate`` is not a support model.
        DataError: the active model's history or split cannot be read.
        NotEnoughDataError: fewer than ``options.min_new`` new conversations to learn from.
    """
    from appkit.store import open_store

    with open_store(settings) as store:
        active = store.active_model(APP)
        if active is None:
            raise ModelError("there is no active support model to improve on: train one first "
                             "(`appkit support train --history tickets.csv`).")
        data = gather(store, active, options, settings, log)
    if options.candidate is not None:
        candidate = _check_candidate(settings, options.candidate, active)
    else:
        candidate = train_candidate(settings, active, data, options, training, log)
    from apps.support.gate import compare

    result = compare(settings, active.name, candidate, data, options, log)
    if result.passed and not options.dry_run:
        with open_store(settings) as store:
            store.promote(candidate)
        result.promoted = True
    from appkit.files import write_json_atomic
    from appkit.models import resolve_model_path

    _, path = resolve_model_path(APP, candidate, settings)
    write_json_atomic(path / RESULT_FILE, result.as_dict())
    return result


def gather(store: Any, active: ModelRecord, options: RetrainOptions, settings: Settings,
           log: Callable[[str], None]) -> RetrainData:
    """The active model's split and the new conversations, curated; NotEnoughDataError when too few are new."""
    from appkit.data import curate, split_conversations
    from appkit.model.io import read_metadata
    from appkit.safety import toxicity_filter
    from apps.support.evaluate import read_split, split_from
    from apps.support.learned import learned_conversations

    history = (active.data or {}).get("history")
    if not history or not Path(str(history)).is_file():
        raise DataError(f"the active model {active.name!r} was trained on {history or 'a history appkit did not record'}, "
                        "which is not there any more: retraining keeps what it learned from it, so put the file back "
                        "(or train afresh with `appkit support train --history FILE --include-feedback`).")
    split = read_split(active.path, active.name)
    metadata = read_metadata(active.path)
    base_train, base_val = split_from(history, split, metadata, active.name)
    learned = learned_conversations(store, since=options.since)
    curation = metadata.get("curation", {}).get("settings", {})
    stored, report = curate(learned.conversations, scrub_pii=curation.get("scrub_pii", True),
                            scrub_urls=curation.get("scrub_urls", True),
                            max_turn_chars=curation.get("max_turn_chars", 2000), is_toxic=toxicity_filter(settings))
    known = set(split["train"])
    again = [c for c in stored if c.id in known]  # stored conversations the active model already learned
    new = [c for c in stored if c.id not in known]
    counts = {"looked_at": learned.looked_at, "with_answers": len(learned.conversations),
              "agent_answers": learned.agent_answers, "good_replies": learned.good_replies,
              "dropped_by_curation": len(learned.conversations) - len(stored), "learned_before": len(again),
              "new": len(new), "history_train": len(base_train), "history_validation": len(base_val)}
    log(f"stored conversations: {learned.looked_at} looked at, {len(learned.conversations)} with an answer to learn "
        f"({learned.agent_answers} agents' answers, {learned.good_replies} replies rated good), "
        f"{counts['dropped_by_curation']} dropped by curation ({report.summary()}), {len(again)} learned before, "
        f"{len(new)} new")
    new_train, new_val = split_conversations(new, val_fraction=options.held_out, seed=options.seed,
                                             min_val=MIN_HELD_OUT)
    if len(new) < options.min_new or len(new_val) < MIN_HELD_OUT:
        since = f" since {options.since:%Y-%m-%d %H:%M}" if options.since else ""
        raise NotEnoughDataError(
            f"only {len(new)} new stored conversation(s){since} hold an answer the active model {active.name!r} has "
            f"not learned (a human agent's answer or a reply rated good); at least {max(options.min_new, 4)} are "
            "needed (--min-new). Nothing was trained or changed.")
    counts.update(new_train=len(new_train), new_held_out=len(new_val))
    return RetrainData(Path(str(history)), [*base_train, *again, *new_train], base_val, new_val, counts, report)


def train_candidate(settings: Settings, active: ModelRecord, data: RetrainData, options: RetrainOptions,
                    training: ChatTrainingOptions | None, log: Callable[[str], None]) -> str:
    """Train the candidate on ``data`` (from the active model by default) and register it, not active."""
    from dataclasses import replace

    from appkit.files import write_json_atomic
    from appkit.models import resolve_base
    from appkit.safety import toxicity_filter
    from appkit.store import open_store
    from appkit.train.pipeline import ChatTrainingOptions
    from appkit.train.tracking import run_name, tracked_run
    from apps.support.train import SPLIT_FILE, train_split

    training = training or ChatTrainingOptions(device=settings.resolve_device())
    if training.base is None and not options.from_scratch:  # keep what the active model knows, learn on top
        training = replace(training, base=active.path, finetune="full")
    if training.base is not None:
        training.base = str(resolve_base(str(training.base), settings))
    if training.is_toxic is None:
        training.is_toxic = toxicity_filter(settings)
    name = run_name(APP, options.name)
    config = {"retrain_of": active.name, "history": str(data.history), "options": training.as_config(),
              "data": data.counts}
    with tracked_run(settings, APP, name, config) as run:
        trained = train_split(data.train, [*data.base_val, *data.new_val], data.curation, name=name,
                              options=training, settings=settings, log=log)
        # The held-out stored conversations are recorded apart, so `appkit support eval --data HISTORY`
        # scores the candidate on exactly the active model's validation conversations.
        write_json_atomic(trained.path / SPLIT_FILE, {"train": [c.id for c in data.train],
                                                      "validation": [c.id for c in data.base_val],
                                                      "validation_stored": [c.id for c in data.new_val]})
        with open_store(settings) as store:
            store.finish_run(run.run_id, "finished", metrics=trained.metrics, model_name=name)
            store.register_model(name, APP, str(trained.path), base=trained.base, preset=trained.preset,
                                 params=trained.parameters, metrics=trained.metrics, status="candidate",
                                 data={**trained.data, "history": str(data.history), "retrieval": True,
                                       "retrain_of": active.name, "learned": data.counts})
        run.registered = True
    log(f"candidate {name} saved at {trained.path} (not active)")
    return name


def _check_candidate(settings: Settings, name: str, active: ModelRecord) -> str:
    from appkit.store import open_store
    from apps.support.evaluate import read_split

    with open_store(settings) as store:
        try:
            record = store.get_model(name)
        except Exception as e:
            raise ModelError(f"--candidate {name}: {e}") from None
    if record.app != APP or record.name == active.name:
        raise ModelError(f"--candidate {name}: expected another support model than the active one "
                         f"({active.name}); see `appkit models list --app support`.")
    if read_split(record.path, name)["validation"] != read_split(active.path, active.name)["validation"]:
        raise DataError(f"--candidate {name} was validated on other conversations than the active model "
                        f"{active.name!r}, so they cannot be compared on the same held-out split.")
    return name
