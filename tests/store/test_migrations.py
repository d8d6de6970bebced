"""Schema lifecycle: upgrade/downgrade, auto-upgrade, revision checks, connection errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from appkit.config import Settings
from appkit.errors import StorageError
from appkit.store import current, downgrade, head, mask_url, normalize_url, open_store, upgrade

TABLES = {"conversations", "messages", "feedback", "models", "training_runs", "moderation_events", "documents"}


def _tables(url: str) -> set[str]:
    engine = create_engine(normalize_url(url))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _schema_diff(url: str) -> list[object]:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from appkit.store.models import Base

    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(ctx, Base.metadata))
    finally:
        engine.dispose()


def test_upgrade_then_downgrade_to_base_and_back(db_url: str) -> None:
    assert current(db_url) is None
    assert upgrade(db_url) == head()
    assert current(db_url) == head()
    assert TABLES <= _tables(db_url)
    # The hand-written migration and the ORM models describe the same schema.
    assert _schema_diff(db_url) == []

    assert downgrade(db_url, "base") is None
    assert current(db_url) is None
    assert _tables(db_url) <= {"alembic_version"}

    assert upgrade(db_url, "head") == head()
    with open_store(url=db_url) as store:  # PostgreSQL at head: no upgrade needed
        assert store.list_conversations() == []


def test_fresh_sqlite_is_upgraded_on_open(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "new-home")
    with open_store(settings) as store:
        store.create_conversation("support")
    assert (tmp_path / "new-home" / "appkit.db").is_file()
    assert current(settings.database_url) == head()


def test_sqlite_with_upgrade_false_is_refused(sqlite_url: str) -> None:
    with pytest.raises(StorageError, match="appkit db upgrade"):
        open_store(url=sqlite_url, upgrade=False)


@pytest.mark.postgres
def test_postgres_behind_is_not_upgraded_silently(pg_url: str) -> None:
    with pytest.raises(StorageError) as err:
        open_store(url=pg_url)
    assert "appkit db upgrade" in str(err.value)
    assert head() in str(err.value)
    upgrade(pg_url)
    open_store(url=pg_url).close()


def test_newer_revision_is_refused(db_url: str) -> None:
    upgrade(db_url)
    engine = create_engine(normalize_url(db_url))
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    engine.dispose()

    attempts = (lambda: open_store(url=db_url), lambda: upgrade(db_url), lambda: open_store(url=db_url, upgrade=True))
    for attempt in attempts:
        with pytest.raises(StorageError) as err:
            attempt()
        assert "9999_from_the_future" in str(err.value)
        assert repr(head()) in str(err.value)
        assert "newer appkit" in str(err.value)
    assert current(db_url) == "9999_from_the_future"


def test_unreachable_postgres_names_masked_url_and_reason() -> None:
    url = "postgresql://appkit:s3cret-pw@127.0.0.1:1/nowhere"
    for attempt in (lambda: open_store(url=url), lambda: current(url), lambda: upgrade(url)):
        with pytest.raises(StorageError) as err:
            attempt()
        msg = str(err.value)
        assert "postgresql+psycopg://appkit:***@127.0.0.1:1/nowhere" in msg
        assert "s3cret" not in msg
        assert "refused" in msg.lower() or "failed" in msg.lower()
        assert err.value.__cause__ is None  # no chained driver traceback for the CLI to print


def test_unusable_sqlite_paths(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageError, match="cannot create directory") as err:
        open_store(url=f"sqlite:///{blocker / 'sub' / 'appkit.db'}")
    assert str(blocker) in str(err.value)

    a_dir = tmp_path / "dir.db"
    a_dir.mkdir()
    with pytest.raises(StorageError, match="unable to open database file") as err:
        open_store(url=f"sqlite:///{a_dir}")
    assert str(a_dir) in str(err.value)


def test_bad_urls() -> None:
    with pytest.raises(StorageError, match="is not a database URL"):
        open_store(url="not a url at all")
    with pytest.raises(StorageError, match="no driver"):
        open_store(url="nosuchdb+nodriver://u:pw@host/db")


def test_url_helpers() -> None:
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"
    assert mask_url("postgresql+psycopg://u:secret@h:5/db") == "postgresql+psycopg://u:***@h:5/db"
    assert "secret" not in mask_url("garbage://u:secret@")


def test_sqlite_pragmas(tmp_path: Path) -> None:
    with open_store(url=f"sqlite:///{tmp_path / 'a.db'}") as store:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000


def test_in_memory_sqlite_works() -> None:
    with open_store(url="sqlite://") as store:
        conv = store.create_conversation("support")
        store.append_message(conv.id, "user", "hi")
        assert [m.content for m in store.messages(conv.id)] == ["hi"]


def test_importing_store_and_cli_loads_no_sqlalchemy() -> None:
    code = "import sys, appkit.store, appkit.store.cli; print('sqlalchemy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
