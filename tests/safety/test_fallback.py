"""Safety that says when it is weaker than it should be, and loads checkpoints only from trusted places.

Review findings (issue 16): the lexicon fallback is announced once per process and `strict`
refuses it; a rule for a label no backend produces is an error; a detoxify-format checkpoint
(a pickle) is loaded from settings only inside APPKIT_HOME, and never if it holds code.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from appkit.config import load_settings
from appkit.errors import ConfigError, SafetyError
from appkit.safety.backends import choose_backend, clear_cache
from appkit.safety.policy import available_labels, load_policy, policy_rules
from appkit.safety.settings import PolicyTables, SafetySettings
from tests.safety.test_cli import run


def _fallback_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "appkit.safety" and r.levelno == logging.WARNING]


def test_lexicon_fallback_warns_once_per_process(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="appkit.safety")
    first = choose_backend()
    assert first.name == "lexicon" and first.degraded and first.as_dict()["degraded"] is True
    choose_backend(reload=True)
    load_policy("support")
    [warning] = _fallback_warnings(caplog)
    assert "lexicon" in warning and "appkit safety train" in warning and "appkit safety download" in warning
    assert "not cached" in warning  # why no classifier loaded


def test_asking_for_the_lexicon_is_not_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="appkit.safety")
    assert choose_backend(backend="lexicon").name == "lexicon"
    assert _fallback_warnings(caplog) == []


def test_strict_refuses_to_run_on_the_lexicon_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "appkit.toml").write_text("[safety]\nstrict = true\n")
    with pytest.raises(SafetyError, match="strict = true and no toxicity classifier could be loaded"):
        choose_backend()
    with pytest.raises(SafetyError, match="appkit safety train"):
        load_policy("support")
    code, out, err = run(capsys, "safety", "score", "hello")
    assert code == 1 and "strict = true" in err and "Traceback" not in err + out


def test_strict_runs_when_a_classifier_loads(tmp_path: Path, home_with_checkpoint: Path) -> None:
    (tmp_path / "appkit.toml").write_text("[safety]\nstrict = true\n")
    assert choose_backend().name == "trained:tiny"


def test_a_rule_for_a_label_no_backend_produces_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "appkit.toml").write_text('[safety.policy.input]\ninsults = "escalate"\n')
    with pytest.raises(ConfigError, match=r"no toxicity backend produces the label 'insults'.*labels available: "
                                          r"toxicity, severe_toxicity, obscene, threat, insult, identity_attack"):
        load_policy("support", load_settings())
    (tmp_path / "appkit.toml").write_text('[safety.apps.support.policy.output]\nsexual_explicit = "block"\n')
    assert any(r.label == "sexual_explicit" for r in load_policy("support", load_settings()).rules["output"])


def test_a_trained_models_own_labels_may_have_rules() -> None:
    class Spam:
        name, labels = "trained:spam", ("toxicity", "spam")

        def score(self, texts: list[str]) -> list[dict[str, float]]:
            return [{"toxicity": 0.0, "spam": 0.9} for _ in texts]

    cfg = SafetySettings(policy=PolicyTables(input={"spam": "flag"}))
    assert [r.label for r in policy_rules("support", cfg, available_labels(Spam()))["input"]][-1] == "spam"
    with pytest.raises(ConfigError, match="'spam'"):
        policy_rules("support", cfg, available_labels())


# --- where detoxify-format checkpoints may come from -----------------------------------------------------------


def test_settings_in_the_working_directory_cannot_point_outside_appkit_home(tiny_checkpoint: Any, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "downloads" / "tiny"
    shutil.copytree(tiny_checkpoint.path, elsewhere)
    (tmp_path / "appkit.toml").write_text(f'[safety]\nbackend = "trained"\ncheckpoint = "{elsewhere}"\n')
    with pytest.raises(SafetyError, match="outside APPKIT_HOME"):
        choose_backend()
    # The same path from the environment (set by the user, as APPKIT_HOME is) loads.
    monkeypatch.setenv("APPKIT_SAFETY_CHECKPOINT", str(elsewhere))
    clear_cache()
    assert choose_backend().name == "trained:tiny"


def test_settings_may_name_a_checkpoint_inside_appkit_home(home_with_checkpoint: Path, tmp_path: Path) -> None:
    (tmp_path / "appkit.toml").write_text('[safety]\nbackend = "trained"\ncheckpoint = "tiny"\n')
    assert choose_backend().name == "trained:tiny"
    (tmp_path / "appkit.toml").write_text(f'[safety]\nbackend = "trained"\ncheckpoint = "{home_with_checkpoint}/safety/tiny"\n')
    clear_cache()
    assert choose_backend().name == "trained:tiny"


def test_a_checkpoint_that_holds_code_is_refused_before_detoxify_unpickles_it(tiny_encoder: Any,
                                                                              tmp_path: Path) -> None:
    import torch

    from appkit.safety.detox import load_trained

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    evil = tmp_path / "home" / "safety" / "evil"
    shutil.copytree(tiny_encoder[0], evil)
    loaded = torch.load(evil / "detoxify.ckpt", weights_only=True)
    loaded["config"]["payload"] = Payload()
    torch.save(loaded, evil / "detoxify.ckpt")
    with pytest.raises(SafetyError, match="holds objects other than tensors and plain data.*posix.system"):
        load_trained(evil)
    assert not (tmp_path / "ran").exists()
