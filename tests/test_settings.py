"""appkit.toml, typed: every table is a dataclass, checked when settings load, errors name the file and key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from appkit.cli import main
from appkit.config import load_settings
from appkit.errors import ConfigError
from apps.support.settings import SupportSettings


@pytest.fixture
def toml(appkit_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201 - a writer
    """Write APPKIT_HOME/appkit.toml (the current directory is an empty folder, so only that file is read)."""
    appkit_home.mkdir(parents=True, exist_ok=True)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)

    def write(text: str) -> Path:
        path = appkit_home / "appkit.toml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


def test_defaults_come_from_the_dataclasses(toml) -> None:  # noqa: ANN001
    settings = load_settings()
    assert settings.app("support") == SupportSettings()
    assert settings.app("support").reply_mode == "grounded" and settings.app("support").facts == {}
    assert settings.safety.backend == "auto" and settings.tui.bindings == {} and settings.serve.port == 8000
    assert settings.files == ()


def test_every_support_setting_is_read(toml) -> None:  # noqa: ANN001
    path = toml('[support]\nreply_mode = "select"\nmin_confidence = -1\ncompany = "Acme"\nsentiment = false\n'
                'escalate_on_sentiment_drop = 0.5\n\n[support.facts]\nsupport_phone = "0800 123 4567"\n'
                'website = "shop.example.com"\nfounded = 1999\n')
    settings = load_settings()
    support = settings.app("support")
    assert support == SupportSettings(reply_mode="select", min_confidence=-1.0, company="Acme", sentiment=False,
                                      escalate_on_sentiment_drop=0.5,
                                      facts={"support_phone": "0800 123 4567", "website": "shop.example.com",
                                             "founded": 1999})
    assert isinstance(support.min_confidence, float) and settings.files == (path,)


@pytest.mark.parametrize(("text", "message"), [
    ('[support]\nreply_mod = "select"\n',
     "[support] unknown key 'reply_mod' (did you mean reply_mode?); known keys: reply_mode, min_confidence, company, "
     "sentiment, escalate_on_sentiment_drop, facts."),
    ('[support]\nmin_confidence = "high"\n', '[support] min_confidence = "high": expected a number.'),
    ('[support]\nreply_mode = "fancy"\n',
     '[support] reply_mode = "fancy": expected one of "grounded", "select", "generate".'),
    ('[support]\nsentiment = "no"\n', '[support] sentiment = "no": expected true or false.'),
    ("[support.facts]\nhours = [9, 17]\n", "[support.facts] hours = [9, 17]: expected a string or a number."),
    ("[support]\nfacts = 3\n", "[support] facts = 3: expected a table of strings or numbers."),
    ("[writer]\ntop_k = 0.5\n", "[writer] top_k = 0.5: expected a whole number."),
    ('[tui.bindings]\nexport = 3\n', "[tui.bindings] export = 3: expected a string."),
    ('[tui]\nthem = "textual-light"\n', "[tui] unknown key 'them' (did you mean theme?)"),
    ('[safety]\nbackend = "huge"\n', '[safety] backend = "huge": expected one of "auto", "official", "trained", "lexicon".'),
    ('[safety.apps.support.policy.output]\nobscene = "shout"\n',
     '[safety.apps.support.policy.output] obscene = "shout": expected a number, a table of threshold, action or one of '
     '"allow", "flag", "mask", "block", "escalate", "off".'),
    ('[safety.policy.input]\ninsult = { threshold = 0.9, actoin = "block" }\n',
     "[safety.policy.input] insult = {threshold = 0.9, actoin = \"block\"}: expected a number, a table of threshold, "
     "action or one of"),
    ("[serve]\nport = 70000\n", "[serve] port = 70000: expected 0-65535"),
    ('[appkit]\ndevice = 1\n', "[appkit] device = 1: expected a string."),
    ('[suport]\nreply_mode = "select"\n',
     "unknown table [suport] (did you mean support?); appkit.toml tables: appkit, safety, tui, serve, support, "
     "writer."),
], ids=["unknown-key", "number", "choice", "bool-not-string", "fact-list", "facts-not-table", "int", "binding",
        "tui-typo", "backend", "app-policy", "rule-table-typo", "port-range", "device-type", "unknown-table"])
def test_a_bad_setting_names_the_file_the_table_and_the_key(toml, text: str, message: str) -> None:  # noqa: ANN001
    path = toml(text)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert str(raised.value).startswith(f"{path}: ")
    assert message in str(raised.value)


def test_the_file_named_is_the_one_that_set_the_key(toml, appkit_home: Path) -> None:  # noqa: ANN001
    toml('[support]\ncompany = "Acme"\n')
    here = Path.cwd() / "appkit.toml"  # read after APPKIT_HOME's, so it wins key by key
    here.write_text('[support]\nmin_confidence = "low"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(f'{here}: [support] min_confidence = "low"')):
        load_settings()
    here.write_text("[support]\nmin_confidence = -1.5\n", encoding="utf-8")
    support = load_settings().app("support")
    assert support.company == "Acme" and support.min_confidence == -1.5  # merged from both files


def test_every_error_is_reported_at_once(toml) -> None:  # noqa: ANN001
    toml('[writer]\ntemperature = "hot"\ntop_p = "high"\n')
    with pytest.raises(ConfigError) as raised:
        load_settings()
    lines = str(raised.value).splitlines()
    assert len(lines) == 2 and "temperature" in lines[0] and "top_p" in lines[1]


def test_the_cli_reports_a_bad_setting_without_a_traceback(toml, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    path = toml("[support]\nescalate_on_sentiment_drop = true\n")
    code = main(["models", "list"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert f"error: {path}: [support] escalate_on_sentiment_drop = true: expected a number." in err.replace("\n", "")


def test_the_settings_documented_in_the_support_app_load(toml) -> None:  # noqa: ANN001
    """The example table in apps/support/settings.py is valid appkit.toml (the docs stay honest)."""
    import apps.support.settings as module

    doc = module.__doc__ or ""
    example = "\n".join(line[4:].split("  #")[0].rstrip() for line in doc.splitlines() if line.startswith("    "))
    toml(example)
    support = load_settings().app("support")
    assert support.company == "Acme" and support.facts["website"] == "shop.example.com"


def test_a_command_flag_replaces_one_setting(toml) -> None:  # noqa: ANN001
    from dataclasses import replace

    toml('[support]\nreply_mode = "select"\ncompany = "Acme"\n')
    settings = load_settings()
    changed = settings.with_app("support", replace(settings.app("support"), reply_mode="generate"))
    assert changed.app("support") == SupportSettings(reply_mode="generate", company="Acme")
    assert settings.app("support").reply_mode == "select"  # the original is unchanged (frozen)


def test_a_project_folders_appkit_toml_cannot_move_the_home(toml, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    # A cloned project's appkit.toml must not point appkit at other models, another database or
    # a checkpoint to unpickle (review finding 9); the home's own file may name a home.
    toml("")
    monkeypatch.delenv("APPKIT_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    project = Path.cwd() / "appkit.toml"
    project.write_text(f'[appkit]\nhome = "{tmp_path / "elsewhere"}"\ndevice = "cpu"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert str(raised.value).startswith(f"{project}: [appkit] home may not be set by a project folder's appkit.toml")
    project.write_text('[appkit]\ndevice = "cpu"\n', encoding="utf-8")  # other keys are fine there
    own = tmp_path / "user" / ".appkit" / "appkit.toml"
    own.parent.mkdir(parents=True)
    own.write_text(f'[appkit]\nhome = "{tmp_path / "elsewhere"}"\n', encoding="utf-8")
    assert load_settings().home == tmp_path / "elsewhere"
