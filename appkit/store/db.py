"""Engines, URLs and Alembic migrations for appkit's database.

SQLite (the default, inside APPKIT_HOME) gets WAL, a busy timeout, foreign keys and
``BEGIN IMMEDIATE`` for writers; PostgreSQL is reached through psycopg 3. The schema is made
and changed only by the migrations in ``migrations/``, run here programmatically, so users
need no ``alembic.ini``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appkit.errors import StorageError
from appkit.resources import shipped_dir

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import URL, Connection, Engine

# Writers wait this long for the SQLite write lock before giving up ("database is locked").
SQLITE_BUSY_TIMEOUT_MS = 30_000
# An unreachable PostgreSQL host fails after this many seconds instead of hanging.
PG_CONNECT_TIMEOUT_S = 10
# Execution option read by the SQLite "begin" hook: which BEGIN to emit.
SQLITE_BEGIN_OPTION = "appkit_sqlite_begin"

_PASSWORD_IN_URL = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def mask_url(url: str | URL) -> str:
    """The URL as text with any password replaced by ``***``."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return _PASSWORD_IN_URL.sub(r"\1***@", str(url))


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` / ``postgres://`` and point them at the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _parse(url: str) -> URL:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(normalize_url(url))
    except ArgumentError:
        raise StorageError(
            f"{mask_url(url)!r} is not a database URL (expected e.g. sqlite:///path/appkit.db "
            "or postgresql+psycopg://user@host/db)."
        ) from None


def driver_reason(error: BaseException) -> str:
    """The driver's own message, on one line, without SQLAlchemy's boilerplate."""
    orig = getattr(error, "orig", None) or error
    return " ".join(str(orig).split()) or type(orig).__name__


def is_memory_sqlite(url: URL) -> bool:
    """True for ``sqlite://`` and ``sqlite:///:memory:``."""
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def create_engine(url: str) -> Engine:
    """An Engine for ``url`` with appkit's SQLite pragmas, or psycopg 3 for PostgreSQL.

    Raises:
        StorageError: the URL is malformed, its driver is missing, or the SQLite file's
            directory cannot be created.
    """
    import sqlalchemy
    from sqlalchemy.exc import NoSuchModuleError

    parsed = _parse(url)
    kwargs: dict[str, Any] = {}
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if is_memory_sqlite(parsed):
            from sqlalchemy.pool import StaticPool

            # One shared connection, or every checkout would see its own empty database.
            kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
        elif parsed.database and not parsed.database.startswith("file:"):
            _create_private_file(Path(parsed.database), parsed)
            # More threads than the default 5+10 pool would otherwise queue for a connection.
            kwargs.update(pool_size=20, max_overflow=20)
    elif backend == "postgresql":
        kwargs.update(pool_pre_ping=True, connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S})
    try:
        engine = sqlalchemy.create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ModuleNotFoundError) as e:
        raise StorageError(f"cannot use database {mask_url(parsed)}: no driver for it ({e}).") from None
    if backend == "sqlite":
        _install_sqlite_hooks(engine)
    return engine


def _create_private_file(path: Path, url: URL) -> None:
    """Create the SQLite file's folder (APPKIT_HOME by default) and the file, private to the owner.

    The database holds customers' conversations: the folder is made 0700 and the file 0600
    (SQLite gives its -wal and -shm files the database file's permissions).
    """
    from appkit.files import PRIVATE_FILE, make_private_dir

    path = path.expanduser()
    try:
        make_private_dir(path.parent)
    except OSError as e:
        raise StorageError(
            f"cannot open database {mask_url(url)}: cannot create directory "
            f"{path.parent} ({e.strerror or e})."
        ) from None
    try:
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE_FILE))  # an empty file is a new database
    except OSError as e:
        raise StorageError(f"cannot open database {mask_url(url)}: cannot create {path} ({e.strerror or e}).") from None


def _install_sqlite_hooks(engine: Engine) -> None:
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the sqlite3 module so SQLAlchemy's "begin" hook below decides
        # (the module's legacy mode would never BEGIN before a SELECT or DDL).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            # WAL: readers (the TUI, `conversations list`) never block the writer or each other.
            cursor.execute("PRAGMA journal_mode = WAL")
            # Safe with WAL (a power cut can lose the last commits, never corrupt the file).
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers ask for IMMEDIATE: they take the write lock up front, so two of them never
        # both read max(seq) and then collide when upgrading a read lock to a write lock.
        mode = conn.get_execution_options().get(SQLITE_BEGIN_OPTION, "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())


def writer_engine(engine: Engine) -> Engine:
    """The same engine, but its transactions start with BEGIN IMMEDIATE on SQLite."""
    if engine.dialect.name != "sqlite":
        return engine
    return engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})


@contextmanager
def connect(engine: Engine) -> Iterator[Connection]:
    """A connection, with connect failures turned into a StorageError naming the URL."""
    from sqlalchemy.exc import DBAPIError

    try:
        conn = engine.connect()
    except DBAPIError as e:
        raise StorageError(f"cannot open database {mask_url(engine.url)}: {driver_reason(e)}") from None
    with conn:
        yield conn


# --- Alembic -------------------------------------------------------------------------------


def _alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    # Config values go through configparser interpolation: a "%" in the path must be doubled.
    cfg.set_main_option("script_location", str(shipped_dir("migrations")).replace("%", "%%"))
    if connection is not None:
        # env.py uses this connection (and so appkit's SQLite set-up) instead of a URL.
        cfg.attributes["connection"] = connection
    return cfg


def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config())


def head() -> str:
    """The newest schema revision this appkit knows."""
    rev = _script().get_current_head()
    assert rev is not None, "migrations/versions is empty"
    return rev


def known_revisions() -> set[str]:
    """Every revision id in this appkit's migrations."""
    return {s.revision for s in _script().walk_revisions()}


def revision_of(conn: Connection) -> str | None:
    """The revision recorded in the database behind ``conn``; None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def _run_command(engine: Engine, name: str, revision: str) -> None:
    from alembic import command
    from alembic.util.exc import CommandError
    from sqlalchemy.exc import DBAPIError

    with connect(writer_engine(engine)) as conn:
        cfg = _alembic_config(conn)
        try:
            getattr(command, name)(cfg, revision)
        except CommandError as e:
            raise StorageError(
                f"cannot {name} database {mask_url(engine.url)} to {revision!r}: {e} "
                f"(this appkit knows revisions up to {head()!r})."
            ) from None
        except DBAPIError as e:
            raise StorageError(
                f"{name} of database {mask_url(engine.url)} to {revision!r} failed: {driver_reason(e)}"
            ) from None


def upgrade(url: str, revision: str = "head") -> str | None:
    """Migrate the database at ``url`` up to ``revision``; returns the revision reached."""
    engine = create_engine(url)
    try:
        check_known(engine)
        _run_command(engine, "upgrade", revision)
        with connect(engine) as conn:
            return revision_of(conn)
    finally:
        engine.dispose()


def downgrade(url: str, revision: str) -> str | None:
    """Migrate the database at ``url`` down to ``revision`` (``base`` drops every table)."""
    engine = create_engine(url)
    try:
        check_known(engine)
        _run_command(engine, "downgrade", revision)
        with connect(engine) as conn:
            return revision_of(conn)
    finally:
        engine.dispose()


def current(url: str) -> str | None:
    """The revision the database at ``url`` is at; None when it has no appkit schema yet."""
    engine = create_engine(url)
    try:
        with connect(engine) as conn:
            return revision_of(conn)
    finally:
        engine.dispose()


def check_known(engine: Engine) -> str | None:
    """The database's revision; StorageError if it is newer than (unknown to) this appkit."""
    with connect(engine) as conn:
        rev = revision_of(conn)
    if rev is not None and rev not in known_revisions():
        raise StorageError(
            f"database {mask_url(engine.url)} is at schema revision {rev!r}, which this appkit "
            f"does not know (its newest is {head()!r}): it was written by a newer appkit. "
            "Upgrade appkit, or point APPKIT_DATABASE_URL at another database."
        )
    return rev


def ensure_schema(engine: Engine, *, upgrade: bool | None = None) -> None:
    """Make sure the schema is at head: migrate (``upgrade``; None = only SQLite) or raise.

    Raises:
        StorageError: the database is unreachable, newer than this appkit, or behind and
            not allowed to be upgraded here.
    """
    rev = check_known(engine)
    target = head()
    if rev == target:
        return
    if upgrade is None:
        # The SQLite default is private to this user: migrating it silently is what they want.
        # A shared server is upgraded on purpose, by whoever runs `appkit db upgrade`.
        upgrade = engine.dialect.name == "sqlite"
    if not upgrade:
        raise StorageError(
            f"database {mask_url(engine.url)} is at schema revision {rev or 'none (empty)'!s} but "
            f"this appkit needs {target!r}: run `appkit db upgrade`."
        )
    _run_command(engine, "upgrade", "head")


def make_revision(message: str, url: str, *, autogenerate: bool = True) -> None:
    """Developers: write a new file in migrations/versions, diffed against ``url`` at head."""
    from alembic import command

    engine = create_engine(url)
    try:
        ensure_schema(engine, upgrade=True)
        with connect(engine) as conn:
            rev_id = f"{len(known_revisions()) + 1:04d}"  # ids are NNNN, in order
            command.revision(_alembic_config(conn), message=message, autogenerate=autogenerate, rev_id=rev_id)
    finally:
        engine.dispose()
