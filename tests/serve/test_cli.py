"""`appkit keys ...` and the checks `appkit serve` makes before it loads anything."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from appkit.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_keys_are_created_listed_and_revoked_and_only_shown_once(appkit_home: Path, capsys):
    code, out, err = run(capsys, "keys", "create", "--name", "website", "--app", "support", "--rate", "30/min")
    assert code == 0
    key = out.strip()
    assert key.startswith("ak-") and "website" in err and "30 requests/min" in err
    code, out, _ = run(capsys, "keys", "list")
    assert code == 0 and "website" in out and key[:10] in out and key not in out and "30/min" in out
    from appkit.store import open_store

    with open_store() as store:
        assert store.find_api_key(key).name == "website"
    assert run(capsys, "keys", "revoke", "website")[0] == 0
    with open_store() as store:
        assert store.find_api_key(key) is None
    code, out, _ = run(capsys, "keys", "list")
    assert "revoked" in out


@pytest.mark.parametrize(("args", "message"), [
    (("--name", "x", "--rate", "10/s"), "expected requests a minute"),
    (("--name", "x", "--app", "suport"), "neither an app"),
    (("--name", " "), "needs a name"),
])
def test_bad_key_options_are_refused_clearly(appkit_home: Path, capsys, args, message):
    code, out, err = run(capsys, "keys", "create", *args)
    assert code != 0 and message in err and "Traceback" not in err and not out


def test_listening_beyond_this_machine_needs_a_key_first(appkit_home: Path, capsys):
    code, _, err = run(capsys, "serve", "--host", "0.0.0.0", "--port", "0")
    assert code == 2 and "refusing to listen on 0.0.0.0" in err and "appkit keys create" in err


def test_a_busy_port_is_one_clear_error(appkit_home: Path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run(capsys, "serve", "--port", str(port))
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err


def test_nothing_to_serve_says_how_to_get_a_model(appkit_home: Path, capsys):
    code, _, err = run(capsys, "serve", "--port", "0")
    assert code == 1 and "nothing to serve" in err and "appkit train-support" in err


def test_serve_settings_in_appkit_toml_are_checked(appkit_home: Path, capsys):
    appkit_home.mkdir(parents=True, exist_ok=True)
    (appkit_home / "appkit.toml").write_text("[serve]\nmax_batch = 0\n")
    code, _, err = run(capsys, "serve")
    assert code == 2 and "max_batch = 0" in err
    (appkit_home / "appkit.toml").write_text("[serve]\nmax_batchs = 4\n")
    code, _, err = run(capsys, "serve")
    assert code == 2 and "max_batchs" in err and "max_batch" in err
